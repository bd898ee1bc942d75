"""Fine-tune an encoder into the extractive reader, score it on held-out passages and calibrate abstention."""

from __future__ import annotations

import json
import math
import random
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qa.config import default_embedder
from qa.metrics import best_threshold, exact_match, f1_score
from qa.passages import Passage
from qa.reader import CALIBRATION_FILE, Reader
from qa.training.features import encode_examples
from qa.training.squad import (QAExample, load_squad, similar_contexts, split_by_passage, subset_by_passage,
                               with_negative_passages)


@dataclass(frozen=True)
class TrainSettings:
    """The whole recipe; recorded next to the weights."""

    data: list[str] = field(default_factory=lambda: ["training/data"])
    base: str = field(default_factory=default_embedder)
    epochs: float = 1.5
    learning_rate: float = 1e-4
    batch_size: int = 16
    max_length: int = 256
    stride: int = 96
    warmup: float = 0.1
    weight_decay: float = 0.01
    negatives: float = 0.3
    dev_fraction: float = 0.12
    dev_distractors: int = 4
    seed: int = 13
    bf16: bool = True
    freeze_embeddings: bool = True
    curve: tuple[float, ...] = (1.0,)
    max_examples: int | None = None


@dataclass(frozen=True)
class DevScores:
    """Reader-only scores on the dev split at the calibrated threshold (percentages, as SQuAD reports)."""

    questions: int
    exact_match: float
    f1: float
    has_answer_f1: float
    no_answer_accuracy: float
    threshold: float


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def length_grouped_batches(lengths: list[int], batch_size: int, rng: random.Random, pool: int = 50) -> list[list[int]]:
    """One epoch of batches in random order, each drawn from a random pool of `pool` batches' worth of windows
    sorted by length, so a batch pads little while every epoch still mixes its windows differently."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches = []
    for i in range(0, len(order), batch_size * pool):
        chunk = sorted(order[i:i + batch_size * pool], key=lengths.__getitem__)
        batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def reader_model(base: str, freeze_embeddings: bool, attention_dropout: float = 0.0):
    """`base` with a fresh QA head. Dropout on the attention weights is off by default: drawing its random mask
    took about a third of a CPU training step (eval/train_bench.py); hidden-state dropout stays. Frozen word
    embeddings (the largest tensor) skip their gradient and optimizer update, and words unseen in training keep
    their pre-trained place."""
    import torch
    from transformers import AutoModelForQuestionAnswering

    model = AutoModelForQuestionAnswering.from_pretrained(base, dtype=torch.float32,
                                                          attention_probs_dropout_prob=attention_dropout)
    model.get_input_embeddings().weight.requires_grad_(not freeze_embeddings)
    return model


def reader_optimizer(model, settings: TrainSettings, fused: bool = True):
    """AdamW over the trainable parameters, without weight decay on biases and LayerNorm weights."""
    import torch

    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in trainable if not any(k in n for k in ("bias", "LayerNorm"))]
    no_decay = [p for n, p in trainable if any(k in n for k in ("bias", "LayerNorm"))]
    return torch.optim.AdamW([{"params": decay, "weight_decay": settings.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=settings.learning_rate, fused=fused)


def train_step(model, optimizer, batch, bf16: bool) -> float:
    """One optimisation step on a padded batch; returns its loss."""
    import torch

    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = model(**batch).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


def fine_tune(settings: TrainSettings, examples: list[QAExample], out: Path, progress: bool = True) -> None:
    """Train `settings.base` with a fresh QA head on `examples`; write an fp16 model folder with its tokenizer."""
    from tqdm.auto import tqdm
    from transformers import AutoTokenizer, get_linear_schedule_with_warmup
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    _seed_everything(settings.seed)
    tokenizer = AutoTokenizer.from_pretrained(settings.base)
    model = reader_model(settings.base, settings.freeze_embeddings)
    features = encode_examples(tokenizer, with_negative_passages(examples, settings.negatives, settings.seed),
                               settings.max_length, settings.stride)
    steps_per_epoch = math.ceil(len(features) / settings.batch_size)
    total = max(1, round(steps_per_epoch * settings.epochs))
    optimizer = reader_optimizer(model, settings)
    schedule = get_linear_schedule_with_warmup(optimizer, int(settings.warmup * total), total)
    rng = random.Random(settings.seed)
    model.train()
    bar = tqdm(total=total, desc=f"training on {len(examples)} questions", disable=not progress)
    lengths = [len(f["input_ids"]) for f in features]
    step = 0
    while step < total:
        for batch_indices in length_grouped_batches(lengths, settings.batch_size, rng):
            if step >= total:
                break
            loss = train_step(model, optimizer, tokenizer.pad([features[j] for j in batch_indices],
                                                              return_tensors="pt"), settings.bf16)
            schedule.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}")
    bar.close()
    model.eval()
    model.half().save_pretrained(out)
    tokenizer.save_pretrained(out)


def evaluate_reader(reader: Reader, examples: list[QAExample], distractors: int = 0,
                    progress: bool = False) -> DevScores:
    """Score the reader's best span per question, read over its own passage and the `distractors` other passages
    of `examples` that BM25 ranks highest for it (as retrieval would bring them), abstaining under the threshold
    that maximises F1."""
    from tqdm.auto import tqdm

    contexts = sorted({e.context for e in examples})
    similar = similar_contexts([e.question for e in examples], contexts, distractors + 1)
    scores, predictions = [], []
    for e, near in tqdm(list(zip(examples, similar)), desc="scoring dev", disable=not progress):
        texts = [e.context] + [c for c in near if c != e.context][:distractors]
        spans = reader.read(e.question, [Passage(f"dev{i}", 0, len(t), t) for i, t in enumerate(texts)])
        scores.append(spans[0].score if spans else 0.0)
        predictions.append(spans[0].text if spans else None)
    answers = [[e.answer] if e.answer is not None else [] for e in examples]
    answerable = [bool(a) for a in answers]
    f1s = [f1_score(p, a) if a else 0.0 for p, a in zip(predictions, answers)]
    threshold, f1 = best_threshold(scores, f1s, answerable)
    final = [p if s >= threshold else None for p, s in zip(predictions, scores)]
    n_has = max(sum(answerable), 1)
    n_no = max(len(examples) - sum(answerable), 1)
    return DevScores(
        questions=len(examples),
        exact_match=100 * sum(exact_match(p, a) for p, a in zip(final, answers)) / max(len(examples), 1),
        f1=100 * f1,
        has_answer_f1=100 * sum(f1_score(p, a) for p, a, ok in zip(final, answers, answerable) if ok) / n_has,
        no_answer_accuracy=100 * sum(p is None for p, ok in zip(final, answerable) if not ok) / n_no,
        threshold=threshold,
    )


def train_reader(settings: TrainSettings, out: str | Path, command: str = "", progress: bool = True,
                 on_record=None) -> dict:
    """Train on all training passages, calibrate the threshold on dev and write the model to `out` with its
    recipe and scores in `out/docqa_reader.json`; then train on the smaller shares of `settings.curve` for
    the learning curve, updating the record (and calling `on_record(record)`) after each."""
    out = Path(out)
    examples = load_squad(settings.data)
    if settings.max_examples:
        examples = examples[:settings.max_examples]
    train, dev = split_by_passage(examples, settings.dev_fraction, settings.seed)
    started = time.time()
    record = {
        "settings": {**asdict(settings), "base": Path(settings.base).name if Path(settings.base).exists() else settings.base},
        "data": {"questions": len(examples), "train_questions": len(train), "dev_questions": len(dev),
                 "passages": len({e.context for e in examples}), "dev_passages": len({e.context for e in dev})},
        "command": command,
        "trained": time.strftime("%Y-%m-%d"),
        "curve": [],
    }
    for fraction in sorted(set(settings.curve) | {1.0}, reverse=True):
        subset = subset_by_passage(train, fraction, settings.seed)
        with tempfile.TemporaryDirectory(prefix="docqa-reader-") as scratch:
            fine_tune(settings, subset, Path(scratch), progress)
            reader = Reader(scratch, max_length=settings.max_length, stride=settings.stride)
            scores = evaluate_reader(reader, dev, settings.dev_distractors, progress)
            if fraction == 1.0:
                if out.exists():
                    shutil.rmtree(out)
                shutil.copytree(scratch, out, copy_function=shutil.copyfile)  # default permissions, not 0600
                out.chmod(0o755)
                record.update(threshold=scores.threshold, dev=asdict(scores),
                              train_seconds=round(time.time() - started, 1))
        record["curve"] = sorted(record["curve"] + [{"share": fraction, "train_questions": len(subset),
                                                     "train_passages": len({e.context for e in subset}),
                                                     **asdict(scores)}], key=lambda c: c["share"])
        (out / CALIBRATION_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
        if on_record:
            on_record(record)
    return record


def plot_curve(record: dict, path: Path) -> None:
    """Dev F1, EM and no-answer accuracy against the number of training questions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = record["curve"]
    x = [c["train_questions"] for c in curve]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("f1", "F1"), ("exact_match", "EM"), ("no_answer_accuracy", "no-answer accuracy")):
        ax.plot(x, [c[key] for c in curve], marker="o", label=label)
    ax.set_xlabel("training questions")
    ax.set_ylabel("dev score (%)")
    distractors = record["settings"].get("dev_distractors", 0)
    ax.set_title(f"Reader on {record['data']['dev_questions']} dev questions (unseen passages, "
                 f"{distractors} distractors each)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
