"""Speed of one reader training step: the recipe's (no attention dropout, frozen word embeddings, fused AdamW)
against a plain fine-tuning step (the base model's own attention dropout, every weight trained, foreach AdamW), on the
same batches, alternating step by step in this one process so that the ratio holds on a noisy machine.

    python eval/train_bench.py [--steps 20] [--data training/data]

The last line printed is one JSON object for scripts.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from transformers import AutoConfig, AutoTokenizer

from qa.training.features import encode_examples
from qa.training.squad import load_squad
from qa.training.train import (TrainSettings, length_grouped_batches, reader_model, reader_optimizer,
                               train_step)

WARM_UP_STEPS = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help=f"timed steps of each (after {WARM_UP_STEPS} warm-up steps)")
    parser.add_argument("--data", nargs="+", default=["training/data"])
    args = parser.parse_args()
    settings = TrainSettings(data=args.data)
    tokenizer = AutoTokenizer.from_pretrained(settings.base)
    features = encode_examples(tokenizer, load_squad(settings.data)[:4000], settings.max_length, settings.stride)
    batches = length_grouped_batches([len(f["input_ids"]) for f in features], settings.batch_size,
                                     random.Random(settings.seed))[:args.steps + WARM_UP_STEPS]
    runs = {}
    base_dropout = AutoConfig.from_pretrained(settings.base).attention_probs_dropout_prob
    for name, attention_dropout, frozen, fused in (("recipe", 0.0, True, True), ("plain", base_dropout, False, False)):
        model = reader_model(settings.base, frozen, attention_dropout)
        model.train()
        runs[name] = (model, reader_optimizer(model, settings, fused=fused), [])
    tokens = 0
    for i, indices in enumerate(batches):
        batch = tokenizer.pad([features[j] for j in indices], return_tensors="pt")
        timed = i >= WARM_UP_STEPS
        for model, optimizer, seconds in runs.values():
            started = time.perf_counter()
            train_step(model, optimizer, batch, settings.bf16)
            if timed:
                seconds.append(time.perf_counter() - started)
        if timed:
            tokens += batch["input_ids"].numel()
    medians = {name: statistics.median(seconds) for name, (_, _, seconds) in runs.items()}
    for name, (_, _, seconds) in runs.items():
        print(f"{name:>6}: {medians[name]:.3f} s a step (median of {len(seconds)}), "
              f"{tokens / sum(seconds):.0f} tokens/s")
    ratio = medians["recipe"] / medians["plain"]
    print(f"recipe / plain step time: {ratio:.3f}")
    print(json.dumps({"train_step_ratio": round(ratio, 3), "recipe_step_s": round(medians["recipe"], 3),
                      "plain_step_s": round(medians["plain"], 3), "steps": args.steps}))


if __name__ == "__main__":
    main()
