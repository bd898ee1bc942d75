"""Speed and scale of docqa, each figure side by side with the bare cost of the models it wraps.

    python eval/bench.py [--quick] [--index indexes/seeds] [--gold eval/gold.jsonl] [--out eval/reports/bench]

Sections, all measured in this one process (and its children) so that the ratios hold on a noisy machine:
  latency   answer time per gold question (warm) against one bare query embedding plus one bare reader
            forward over the same windows; also the reader alone against its bare forward
  cold      seconds from process start to the first answer of `qa ask`, and what the time goes to
  indexing  passages/s of `Assistant.build` against a bare `SentenceTransformer.encode` of the same passages
  scale     synthetic corpora (clustered random unit vectors; real sentences for BM25): for each FAISS index
            type the project chooses, build time, search p50 at top-10, recall@10 against exact search and
            bytes per passage; plus a plot of search latency against corpus size
The last line printed is one JSON object for scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIMENSION = 384


# -- latency ----------------------------------------------------------------------------------------------
@dataclass
class Latency:
    questions: int
    answer_p50_ms: float
    answer_p95_ms: float
    bare_p50_ms: float
    ratio: float
    reader_ratio: float


def bench_latency(assistant, questions: list[str], repeats: int) -> Latency:
    """Per question, interleaved `repeats` times: ask; bare forward of the embedding model over the question's
    tokens; reader.read; bare forward of the reader over the same windows (tokenised beforehand)."""
    import torch

    from qa.evaluation import latency_stats

    reader, embedder = assistant.reader, assistant.embedder.query_encoder
    answer_s, bare_s, read_s, forward_s = [], [], [], []
    for question in questions:
        passages = [hit.passage for hit in assistant.ask(question).passages]
        windows = reader.encode(question, passages)
        inputs = {k: v for k, v in windows.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        tokens = embedder.tokenizer([question], return_tensors="pt")
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            assistant.ask(question)
            t1 = time.perf_counter()
            with torch.inference_mode():
                embedder.model(**tokens)
            t2 = time.perf_counter()
            reader.read(question, passages)
            t3 = time.perf_counter()
            with torch.inference_mode():
                reader.model(**inputs)
            t4 = time.perf_counter()
            runs.append((t1 - t0, (t2 - t1) + (t4 - t3), t3 - t2, t4 - t3))
        for values, column in zip((answer_s, bare_s, read_s, forward_s), zip(*runs)):
            values.append(statistics.median(list(column)))
    answers = latency_stats(answer_s)  # the percentiles `qa eval` reports
    return Latency(len(questions), 1000 * answers.p50_s, 1000 * answers.p95_s, 1000 * statistics.median(bare_s),
                   sum(answer_s) / sum(bare_s), sum(read_s) / sum(forward_s))


# -- cold start -------------------------------------------------------------------------------------------
PHASES = """
import json, sys, time
t = [time.perf_counter()]
import torch; t.append(time.perf_counter())
import transformers; from transformers import AutoModel; t.append(time.perf_counter())
from qa import Assistant; assistant = Assistant.load(sys.argv[1]); t.append(time.perf_counter())
assistant.reader; t.append(time.perf_counter())
assistant.ask(sys.argv[2]); t.append(time.perf_counter())
names = ["import torch", "import transformers", "load embedder + index", "load reader",
         "first answer"]
print(json.dumps({n: round(b - a, 3) for n, a, b in zip(names, t, t[1:])}))
"""


@dataclass
class ColdStart:
    seconds: float
    runs: int
    phases: dict[str, float]


def bench_cold_start(index: Path, question: str, runs: int) -> ColdStart:
    """Wall seconds of `qa ask` from spawn to exit (median of `runs`), and one run's time per phase."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    qa_cli = Path(sys.executable).parent / "qa"
    walls = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([str(qa_cli), "ask", "--index", str(index), question], env=env, check=True,
                       capture_output=True)
        walls.append(time.perf_counter() - start)
    phases = subprocess.run([sys.executable, "-c", PHASES, str(index), question], env=env, check=True,
                            capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return ColdStart(statistics.median(walls), runs, json.loads(phases))


# -- indexing ---------------------------------------------------------------------------------------------
@dataclass
class Indexing:
    documents: int
    passages: int
    passages_per_s: float
    bare_passages_per_s: float
    ratio: float


def training_passages() -> list[str]:
    """Real news-like text that is not the seed corpus: the passages of the reader's training data."""
    texts = []
    for path in sorted((ROOT / "training" / "data").glob("*.json")):
        for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
            texts.extend(p["context"] for p in article["paragraphs"])
    return texts


def bench_indexing(texts: list[str], config) -> Indexing:
    """`Assistant.build` over one file per text (load, split, embed, FAISS, BM25, atomic write) against a bare
    `encode` of the passages it cut, run after it in the same process. Both run with the libraries imported:
    imports are a one-off per process (see the cold start), not a cost per passage."""
    import sentence_transformers  # noqa: F401

    from qa import Assistant

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "docs"
        folder.mkdir()
        for i, text in enumerate(texts):
            (folder / f"doc{i:05d}.txt").write_text(text, encoding="utf-8")
        start = time.perf_counter()
        assistant = Assistant.build([folder], Path(tmp) / "index", config)
        build_s = time.perf_counter() - start
    passages = [p.text for p in assistant.index.passages]
    start = time.perf_counter()
    assistant.embedder.model.encode(passages, batch_size=config.embed_batch_size, normalize_embeddings=True)
    bare_s = time.perf_counter() - start
    return Indexing(len(texts), len(passages), len(passages) / build_s, len(passages) / bare_s, bare_s / build_s)


# -- scale ------------------------------------------------------------------------------------------------
@dataclass
class ScaleRow:
    passages: int
    factory: str
    default: bool
    build_s: float
    search_p50_ms: float
    recall_at_10: float
    bytes_per_passage: float


def clustered_unit_vectors(n: int, rng, clusters: int) -> "np.ndarray":
    """Unit vectors around `clusters` random centres (cosine about 0.7 to their centre), like text embeddings,
    whose neighbourhoods are topical, unlike uniform random vectors."""
    import numpy as np

    centres = rng.standard_normal((clusters, DIMENSION), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = np.empty((n, DIMENSION), dtype=np.float32)
    for start in range(0, n, 100_000):
        end = min(n, start + 100_000)
        block = centres[rng.integers(0, clusters, end - start)]
        block += rng.standard_normal(block.shape, dtype=np.float32) / np.sqrt(DIMENSION)
        vectors[start:end] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return vectors


def bench_scale(sizes: list[int], queries: int, seed: int = 0) -> list[ScaleRow]:
    import faiss
    import numpy as np

    from qa.vector_store import build_faiss, choose_factory

    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        vectors = clustered_unit_vectors(n, rng, clusters=max(10, n // 200))
        picks = rng.integers(0, n, queries)
        query = vectors[picks] + 0.5 * rng.standard_normal((queries, DIMENSION), dtype=np.float32) / np.sqrt(DIMENSION)
        query /= np.linalg.norm(query, axis=1, keepdims=True)
        exact = faiss.IndexFlatIP(DIMENSION)
        exact.add(vectors)
        _, truth = exact.search(query, 10)
        del exact
        for factory in ["Flat", "HNSW32", f"IVF{int(4 * np.sqrt(n))},Flat"]:
            start = time.perf_counter()
            index = build_faiss(vectors, factory)
            build_s = time.perf_counter() - start
            times, found = [], []
            for q in query:  # one question at a time, as the assistant searches
                start = time.perf_counter()
                _, positions = index.search(q[None, :], 10)
                times.append(time.perf_counter() - start)
                found.append(positions[0])
            recall = float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]))
            size, search_ms = faiss.serialize_index(index).nbytes, 1000 * statistics.median(times)
            rows.append(ScaleRow(n, factory, factory == choose_factory(n), build_s, search_ms, recall, size / n))
            print(f"  {n:>9,} passages  {factory:<14} build {build_s:7.1f} s  search p50 {search_ms:7.3f} ms"
                  f"  recall@10 {recall:.3f}  {size / n:6.0f} B/passage", flush=True)
            del index
        del vectors
    return rows


@dataclass
class LexicalScale:
    passages: int
    build_s: float
    search_p50_ms: float


def bench_lexical(sizes: list[int], sentences: list[str], questions: list[str], seed: int = 0) -> list[LexicalScale]:
    """BM25 over passages of 6 real sentences drawn at random, searched with real questions."""
    from qa.lexical import LexicalIndex

    rng = random.Random(seed)
    rows = []
    for n in sizes:
        texts = [" ".join(rng.choices(sentences, k=6)) for _ in range(n)]
        start = time.perf_counter()
        lexical = LexicalIndex(texts)
        build_s = time.perf_counter() - start
        del texts
        times = []
        for question in questions:
            start = time.perf_counter()
            lexical.search(question, 20)
            times.append(time.perf_counter() - start)
        rows.append(LexicalScale(n, build_s, 1000 * statistics.median(times)))
        print(f"  {n:>9,} passages  BM25           build {build_s:7.1f} s  search p50 {rows[-1].search_p50_ms:7.3f} ms",
              flush=True)
    return rows


def plot_scale(rows: list[ScaleRow], lexical: list[LexicalScale], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for kind in dict.fromkeys(r.factory.split(",")[0].rstrip("0123456789") for r in rows):
        chosen = [r for r in rows if r.factory.startswith(kind)]
        ax.plot([r.passages for r in chosen], [r.search_p50_ms for r in chosen], marker="o", label=f"FAISS {kind}")
    ax.plot([r.passages for r in lexical], [r.search_p50_ms for r in lexical], marker="s", linestyle="--",
            label="BM25 (bm25s)")
    ax.set(xscale="log", yscale="log", xlabel="passages", ylabel="search p50, ms (top-10, one query)",
           title="Search latency against corpus size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- main -------------------------------------------------------------------------------------------------
def open_assistant(index: Path):
    """The assistant over `index`, building it from seeds/ first if it is missing."""
    from qa import Assistant

    if not (index / "manifest.json").exists():
        Assistant.build([ROOT / "seeds"], index)
    return Assistant.load(index)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes and few questions: a smoke run")
    parser.add_argument("--index", type=Path, default=ROOT / "indexes" / "seeds")
    parser.add_argument("--gold", type=Path, default=ROOT / "eval" / "gold.jsonl")
    parser.add_argument("--out", type=Path, default=None, help="folder for the scale plot (default: none)")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="scale corpus sizes, comma-separated")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sizes = [1000, 5000] if args.quick else [int(s) for s in args.sizes.split(",")]

    from qa.evaluation import load_gold

    questions = [item.question for item in load_gold(args.gold)]
    assistant = open_assistant(args.index)
    import torch

    print(f"docqa benchmark: {os.cpu_count()} CPU cores, torch {torch.__version__} with "
          f"{torch.get_num_threads()} threads{' (quick)' if args.quick else ''}", flush=True)

    print("latency (warm, per gold question, median of 3 interleaved runs)", flush=True)
    latency = bench_latency(assistant, questions[:5] if args.quick else questions, repeats=1 if args.quick else 3)
    print(f"  answer p50 {latency.answer_p50_ms:.1f} ms, p95 {latency.answer_p95_ms:.1f} ms; bare embed + forward "
          f"p50 {latency.bare_p50_ms:.1f} ms; ratio {latency.ratio:.3f} (reader alone: {latency.reader_ratio:.3f})",
          flush=True)

    print("cold start (`qa ask`, process start to answer)", flush=True)
    cold = bench_cold_start(args.index, questions[0], runs=1 if args.quick else 3)
    print(f"  {cold.seconds:.2f} s (median of {cold.runs}); one run by phase: "
          + ", ".join(f"{name} {s:.2f} s" for name, s in cold.phases.items()), flush=True)

    print("indexing throughput", flush=True)
    texts = training_passages()
    indexing = bench_indexing(texts[:40] if args.quick else texts, assistant.config)
    print(f"  {indexing.documents} documents, {indexing.passages} passages: {indexing.passages_per_s:.1f} passages/s; "
          f"bare encode {indexing.bare_passages_per_s:.1f} passages/s; ratio {indexing.ratio:.3f}", flush=True)

    print(f"scale (FAISS on clustered random unit vectors, {DIMENSION}-d, one query at a time)", flush=True)
    scale = bench_scale(sizes, queries=50 if args.quick else 200)
    sentences = [s for text in texts for s in text.split(". ") if len(s) > 20]
    lexical = bench_lexical(sizes, sentences, questions[:50])
    if args.out:
        plot_scale(scale, lexical, args.out / "scale.png")
        (args.out / "bench.json").write_text(json.dumps(
            {"latency": asdict(latency), "cold_start": asdict(cold), "indexing": asdict(indexing),
             "scale": [asdict(r) for r in scale], "lexical": [asdict(r) for r in lexical]}, indent=2))
        print(f"  plot: {args.out / 'scale.png'}")

    largest = [r for r in scale if r.passages == max(sizes) and r.default][0]
    print(json.dumps({"latency_ratio": round(latency.ratio, 3), "latency_p50_ms": round(latency.answer_p50_ms, 1),
                      "latency_p95_ms": round(latency.answer_p95_ms, 1), "reader_ratio": round(latency.reader_ratio, 3),
                      "cold_start_s": round(cold.seconds, 2), "index_throughput_ratio": round(indexing.ratio, 3),
                      "index_passages_per_s": round(indexing.passages_per_s, 1), "recall_at_10": largest.recall_at_10,
                      "recall_at_10_index": largest.factory, "recall_at_10_passages": largest.passages}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
