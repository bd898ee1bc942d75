"""Reader latency: time to read the top passages of a question, against one bare forward pass over the same
token windows, measured side by side in one process.

    python eval/bench_reader.py [--index indexes/seeds] [--gold eval/gold.jsonl] [--top-k 5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path


def measure(assistant, questions: list[str], top_k: int, repeats: int) -> list[tuple[float, float]]:
    """(reader seconds, bare forward seconds) per question: the median of `repeats` interleaved runs each."""
    import torch

    reader = assistant.reader
    results = []
    for question in questions:
        passages = [hit.passage for hit in assistant.retrieve(question, top_k=top_k)]
        windows = reader.encode(question, passages)
        inputs = {k: v for k, v in windows.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        read_times, forward_times = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            reader.read(question, passages)
            read_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            with torch.inference_mode():
                reader.model(**inputs)
            forward_times.append(time.perf_counter() - start)
        results.append((statistics.median(read_times), statistics.median(forward_times)))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", default="indexes/seeds")
    parser.add_argument("--gold", default="eval/gold.jsonl")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions")
    args = parser.parse_args(argv)

    from qa import Assistant

    assistant = Assistant.load(args.index)
    questions = [json.loads(line)["question"] for line in Path(args.gold).read_text().splitlines() if line.strip()]
    questions = questions[:args.limit]
    measure(assistant, questions[:2], args.top_k, 1)  # warm-up
    results = measure(assistant, questions, args.top_k, args.repeats)
    read = [r for r, _ in results]
    bare = [f for _, f in results]
    ratio = sum(read) / sum(bare)
    print(f"reader over top-{args.top_k} passages, {len(questions)} questions, median of {args.repeats} runs each")
    print(f"  read (encode + forward + span search + merge): p50 {1000 * statistics.median(read):.1f} ms, "
          f"mean {1000 * statistics.mean(read):.1f} ms")
    print(f"  bare forward over the same windows:           p50 {1000 * statistics.median(bare):.1f} ms, "
          f"mean {1000 * statistics.mean(bare):.1f} ms")
    print(f"  ratio read / bare forward: {ratio:.3f}")
    print(json.dumps({"reader_ms_p50": round(1000 * statistics.median(read), 2),
                      "forward_ms_p50": round(1000 * statistics.median(bare), 2), "reader_ratio": round(ratio, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
