"""SQuAD-2 answer metrics: exact match and token F1, maxed over the acceptable answers.

A prediction of None means "no answer"; a question with no acceptable answers is unanswerable, and
abstaining on it scores 1 on both metrics.
"""

from __future__ import annotations

from collections import Counter

from qa.normalize import normalize_answer


def exact_match(prediction: str | None, answers: list[str]) -> float:
    if not answers or prediction is None:
        return float(not answers and prediction is None)
    return max(float(normalize_answer(prediction) == normalize_answer(a)) for a in answers)


def _f1(prediction: str, answer: str) -> float:
    pred, gold = normalize_answer(prediction).split(), normalize_answer(answer).split()
    if not pred or not gold:
        return float(pred == gold)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str | None, answers: list[str]) -> float:
    if not answers or prediction is None:
        return float(not answers and prediction is None)
    return max(_f1(prediction, a) for a in answers)


def best_threshold(scores: list[float], f1_if_answered: list[float], answerable: list[bool]) -> tuple[float, float]:
    """The abstention threshold that maximises mean F1, and that F1.

    Question i is answered when scores[i] >= threshold, scoring f1_if_answered[i]; abstaining scores 1 on an
    unanswerable question and 0 on an answerable one. Thresholds are tried at midpoints between scores.
    """
    ordered = sorted(set(scores))
    candidates = [0.0] + [(a + b) / 2 for a, b in zip(ordered, ordered[1:])] + [ordered[-1] + 1e-6 if ordered else 1.0]
    best = (0.5, -1.0)
    for threshold in candidates:
        total = sum(f if s >= threshold else float(not ok) for s, f, ok in zip(scores, f1_if_answered, answerable))
        f1 = total / max(len(scores), 1)
        if f1 > best[1]:
            best = (threshold, f1)
    return best
