"""SQuAD-2 JSON training data: load, split by passage, add negative passages."""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class QAExample:
    """One question over one passage; `answer` None when the passage does not answer it."""

    id: str
    question: str
    context: str
    answer: str | None
    answer_start: int | None


def load_squad(paths: list[str | Path]) -> list[QAExample]:
    """Every question of the SQuAD-2 files (or folders of *.json files) in `paths`."""
    files = [f for p in map(Path, paths) for f in (sorted(p.glob("*.json")) if p.is_dir() else [p])]
    examples = []
    for path in files:
        for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    answers = [] if qa.get("is_impossible") else qa["answers"]
                    first = answers[0] if answers else None
                    examples.append(QAExample(qa["id"], qa["question"], paragraph["context"],
                                              first["text"] if first else None, first["answer_start"] if first else None))
    return examples


def _shuffled_passages(examples: list[QAExample], seed: int) -> list[str]:
    """The distinct passages, in a seeded random order."""
    contexts = sorted({e.context for e in examples})
    random.Random(seed).shuffle(contexts)
    return contexts


def split_by_passage(examples: list[QAExample], dev_fraction: float, seed: int) -> tuple[list[QAExample], list[QAExample]]:
    """(train, dev) with every passage on one side only, so dev measures reading unseen text."""
    contexts = _shuffled_passages(examples, seed)
    dev_contexts = set(contexts[:round(len(contexts) * dev_fraction)])
    return [e for e in examples if e.context not in dev_contexts], [e for e in examples if e.context in dev_contexts]


def subset_by_passage(examples: list[QAExample], fraction: float, seed: int) -> list[QAExample]:
    """The questions of a random `fraction` of the passages."""
    contexts = _shuffled_passages(examples, seed)
    keep = set(contexts[:max(1, round(len(contexts) * fraction))])
    return [e for e in examples if e.context in keep]


def similar_contexts(questions: list[str], contexts: list[str], k: int) -> list[list[str]]:
    """For each question, the (up to) k contexts that BM25 ranks highest for it, as retrieval would."""
    from qa.lexical import LexicalIndex

    index = LexicalIndex(contexts)
    return [[contexts[i] for i, _ in index.search(q, k)] for q in questions]


def with_negative_passages(examples: list[QAExample], rate: float, seed: int) -> list[QAExample]:
    """Add, for a `rate` share of answerable questions, the same question over another passage as unanswerable:
    the passage BM25 ranks highest for it among those not containing the answer (else a random one that lacks it too), so the
    reader learns to score spans low in the near-miss passages retrieval brings."""
    rng = random.Random(seed)
    contexts = sorted({e.context for e in examples})
    chosen = [e for e in examples if e.answer is not None and len(contexts) > 1 and rng.random() < rate]
    negatives = []
    for e, similar in zip(chosen, similar_contexts([e.question for e in chosen], contexts, k=6)):
        lacking = [c for c in similar if c != e.context and not mentions(c, e.answer)]
        other = lacking[0] if lacking else rng.choice([c for c in contexts if c != e.context])
        if not mentions(other, e.answer):
            negatives.append(replace(e, id=f"{e.id}-neg", context=other, answer=None, answer_start=None))
    return examples + negatives


def mentions(context: str, answer: str) -> bool:
    """Whether `answer` stands in `context` as whole words, ignoring case ("PA" is not in "partly")."""
    return re.search(rf"(?<!\w){re.escape(answer)}(?!\w)", context, re.IGNORECASE) is not None
