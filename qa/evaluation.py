"""Evaluation against a gold question set: answer, citation, retrieval, abstention and latency metrics.

`evaluate(assistant, gold)` asks every gold question once (at threshold 0, so that each question's best
candidate and its score are known), retrieves it with each retriever, and scores:

- answers: exact match and token F1 with SQuAD normalisation, maxed over the acceptable answers (qa.metrics),
  over all questions and split into answerable / unanswerable; abstaining is predicting None;
- abstention: the F1-against-threshold curve, its best threshold, and the F1 at the assistant's threshold;
- citations: whether the answer's citation overlaps the gold span in the gold document (or quotes an
  acceptable answer, in whichever document);
- retrieval: recall@1/5/10 and MRR of the gold passage for the dense, BM25 and fused rankings;
- the answer funnel: where answerable questions lose F1, from the passages read to the answer given;
- latency of `Assistant.ask`, p50 and p95;
- a baseline, "answer = the sentence of the top passage with most question words", scored the same way.

The library never prints; `progress=True` shows a tqdm bar on stderr. `qa.report` writes the artefacts.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from qa.errors import InputError
from qa.metrics import best_threshold, exact_match, f1_score
from qa.normalize import normalize_answer
from qa.passages import Passage, sentence_spans

RETRIEVERS = ("dense", "bm25", "hybrid")
RECALL_AT = (1, 5, 10)
RETRIEVAL_DEPTH = 10
CURVE_STEPS = 101
REPORT_VERSION = 1


# -- gold -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GoldItem:
    """A gold question: acceptable answers and where the first one stands (none for unanswerable ones)."""

    id: str
    question: str
    answers: list[str]
    doc_id: str | None = None
    answer_start: int | None = None

    @property
    def answerable(self) -> bool:
        return bool(self.answers)

    @property
    def span(self) -> tuple[int, int] | None:
        """[start, end) of the gold answer in its document, or None."""
        if not self.answers or self.doc_id is None or self.answer_start is None:
            return None
        return self.answer_start, self.answer_start + len(self.answers[0])


def _gold_item(raw: Mapping[str, Any] | GoldItem, where: str) -> GoldItem:
    if isinstance(raw, GoldItem):
        return raw
    try:
        answers = [str(a) for a in raw.get("answers") or []]
        start = raw.get("answer_start")
        return GoldItem(str(raw["id"]), str(raw["question"]), answers, raw.get("doc_id"),
                        int(start) if start is not None else None)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"{where}: not a gold question ({exc!r}); expected "
                         '{"id", "question", "answers", "doc_id", "answer_start"}') from None


def load_gold(gold: str | Path | Iterable[Mapping[str, Any] | GoldItem]) -> list[GoldItem]:
    """Gold questions from a JSON Lines file, or from dicts / GoldItems; ids must be unique."""
    if isinstance(gold, (str, Path)):
        path = Path(gold)
        if not path.is_file():
            raise InputError(f"gold file {path} not found")
        items = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    items.append(_gold_item(json.loads(line), f"{path}:{n}"))
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}:{n}: not JSON ({exc})") from None
    else:
        items = [_gold_item(raw, f"gold item {n}") for n, raw in enumerate(gold, start=1)]
    if not items:
        raise InputError("the gold set is empty")
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise InputError(f"gold question id {item.id!r} appears twice")
        seen.add(item.id)
    return items


# -- results --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CitedSpan:
    """Where a prediction is cited: a span of a document."""

    doc_id: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class RetrievedPassage:
    """One retrieved passage, as the failure list shows it."""

    doc_id: str
    start: int
    end: int
    text: str
    gold: bool


@dataclass(frozen=True)
class QuestionResult:
    """Everything measured for one gold question. `prediction` is at the assistant's threshold (None when it
    abstains); `candidate` and `score` are its best answer at threshold 0, which the threshold curve sweeps."""

    id: str
    question: str
    answers: list[str]
    doc_id: str | None
    answer_start: int | None
    answerable: bool
    candidate: str | None
    score: float
    prediction: str | None
    exact_match: float
    f1: float
    f1_if_answered: float
    f1_best_candidate: float  # the best F1 among the reader's candidates (its answer and alternatives)
    citations: list[CitedSpan]
    citation_correct: bool | None  # first citation; None when not an answered answerable question
    citation_correct_any: bool | None
    ranks: dict[str, int | None]  # retriever -> 1-based rank of the gold passage in the top 10
    latency_s: float
    baseline_prediction: str | None
    baseline_exact_match: float
    baseline_f1: float
    baseline_citation_correct: bool | None
    passages: list[RetrievedPassage]  # the top passages the reader was given

    @property
    def abstained(self) -> bool:
        return self.prediction is None


@dataclass(frozen=True)
class AnswerMetrics:
    """SQuAD-2 style answer metrics, in percent; citation accuracy over answered answerable questions."""

    exact_match: float
    f1: float
    has_ans_exact_match: float
    has_ans_f1: float
    no_ans_accuracy: float
    no_answer_precision: float
    no_answer_recall: float
    answered: int
    abstained: int
    citation_accuracy: float
    citation_accuracy_any: float


@dataclass(frozen=True)
class RetrievalMetrics:
    """Recall@k (percent) and MRR@10 (0-1) of the gold passage over the answerable questions."""

    recall: dict[str, float]  # "1", "5", "10" -> percent
    mrr: float
    questions: int


@dataclass(frozen=True)
class ThresholdCurve:
    """F1 (percent) as a function of the abstention threshold; answer when score >= threshold. The curve is
    sampled on a 0.01 grid and at every question's score, so it is exact as a left-continuous step function."""

    configured: float
    configured_source: str
    f1_at_configured: float
    best: float
    f1_at_best: float
    thresholds: list[float]
    f1: list[float]
    has_ans_f1: list[float]
    no_ans_accuracy: list[float]


@dataclass(frozen=True)
class AnswerFunnel:
    """Where the answerable questions lose F1, stage by stage (percent): the gold passage is among those the
    reader reads; the best of the reader's `candidates` candidates; its first candidate, answering everything;
    and the answer at the configured threshold (HasAns F1). A drop between two stages is the loss of the later
    one: retrieval, then the reader's choice among its candidates, then abstention."""

    gold_passage_read: float
    best_candidate_f1: float
    first_candidate_f1: float
    answered_f1: float
    candidates: int


@dataclass(frozen=True)
class LatencyStats:
    """Wall-clock seconds of one `Assistant.ask` call."""

    p50_s: float
    p95_s: float
    mean_s: float
    max_s: float


@dataclass(frozen=True)
class Overall:
    questions: int
    answerable: int
    unanswerable: int
    reader: AnswerMetrics
    baseline: AnswerMetrics
    retrieval: dict[str, RetrievalMetrics]
    threshold: ThresholdCurve
    funnel: AnswerFunnel
    latency: LatencyStats


@dataclass(frozen=True)
class EvalReport:
    """The whole evaluation: settings, overall metrics, per-question results and gold-set warnings."""

    meta: dict[str, Any]
    overall: Overall
    questions: list[QuestionResult]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of report.json."""
        out = asdict(self)
        for q, result in zip(out["questions"], self.questions):
            q["abstained"] = result.abstained
        return out


# -- scoring rules --------------------------------------------------------------------------------------
def citation_correct(citation: CitedSpan, item: GoldItem) -> bool:
    """A citation is right when it overlaps the gold span in the gold document, or when its text is an
    acceptable answer (normalised), in whichever document: the answer may stand in several documents."""
    span = item.span
    if span is not None and citation.doc_id == item.doc_id and citation.start < span[1] and citation.end > span[0]:
        return True
    text = normalize_answer(citation.text)
    return bool(text) and any(text == normalize_answer(a) for a in item.answers)


def gold_passages(item: GoldItem, passages: list[Passage]) -> set[tuple[str, int, int]]:
    """The passages that hold the gold span: those of the gold document whose [start, end) contains it, or,
    if none does (a span cut by a passage boundary), those that overlap it."""
    span = item.span
    if span is None:
        return set()
    own = [p for p in passages if p.doc_id == item.doc_id]
    inside = {(p.doc_id, p.start, p.end) for p in own if p.start <= span[0] and span[1] <= p.end}
    return inside or {(p.doc_id, p.start, p.end) for p in own if p.start < span[1] and p.end > span[0]}


def baseline_sentence(question: str, passage: Passage, text: str) -> CitedSpan | None:
    """The sentence of `passage` (cut from its document `text`) sharing most normalised words with the
    question; the first such sentence on ties."""
    words = set(normalize_answer(question).split())
    best: tuple[int, CitedSpan] | None = None
    for start, end in sentence_spans(text):
        start, end = max(start, passage.start), min(end, passage.end)
        if start >= end:
            continue
        overlap = len(words & set(normalize_answer(text[start:end]).split()))
        if best is None or overlap > best[0]:
            best = (overlap, CitedSpan(passage.doc_id, start, end, text[start:end]))
    return best[1] if best else None


def _percent(values: list[float]) -> float:
    return 100.0 * sum(values) / len(values) if values else 0.0


def answer_metrics(predictions: list[str | None], items: list[GoldItem],
                   citations_right: list[bool | None] | None = None,
                   citations_right_any: list[bool | None] | None = None) -> AnswerMetrics:
    """Answer metrics of `predictions` (None = abstain) against `items`, in percent."""
    em = [exact_match(p, g.answers) for p, g in zip(predictions, items)]
    f1 = [f1_score(p, g.answers) for p, g in zip(predictions, items)]
    has = [i for i, g in enumerate(items) if g.answerable]
    no = [i for i, g in enumerate(items) if not g.answerable]
    abstained = [i for i, p in enumerate(predictions) if p is None]
    first = [c for c in citations_right or [] if c is not None]
    anywhere = [c for c in citations_right_any or [] if c is not None]
    return AnswerMetrics(
        exact_match=_percent(em), f1=_percent(f1),
        has_ans_exact_match=_percent([em[i] for i in has]), has_ans_f1=_percent([f1[i] for i in has]),
        no_ans_accuracy=_percent([float(predictions[i] is None) for i in no]),
        no_answer_precision=_percent([float(not items[i].answerable) for i in abstained]),
        no_answer_recall=_percent([float(predictions[i] is None) for i in no]),
        answered=len(predictions) - len(abstained), abstained=len(abstained),
        citation_accuracy=_percent([float(c) for c in first]),
        citation_accuracy_any=_percent([float(c) for c in anywhere]))


def retrieval_metrics(ranks: list[int | None]) -> RetrievalMetrics:
    """Recall@1/5/10 and MRR@10 from the gold passage's rank in each answerable question's ranking."""
    recall = {str(k): _percent([float(r is not None and r <= k) for r in ranks]) for k in RECALL_AT}
    mrr = sum(1.0 / r for r in ranks if r is not None) / len(ranks) if ranks else 0.0
    return RetrievalMetrics(recall, mrr, len(ranks))


def threshold_curve(scores: list[float], f1_if_answered: list[float], answerable: list[bool],
                    configured: float, configured_source: str) -> ThresholdCurve:
    """F1 against the abstention threshold over [0, 1], the best threshold (qa.metrics.best_threshold) and
    the F1 at the configured one."""
    s, f, ok = np.array(scores, dtype=float), np.array(f1_if_answered, dtype=float), np.array(answerable, dtype=bool)

    def at(t: float) -> tuple[float, float, float]:
        per = np.where(s >= t, f, (~ok).astype(float))
        answered = s >= t
        return (100 * float(per.mean()) if len(per) else 0.0,
                100 * float(per[ok].mean()) if ok.any() else 0.0,
                100 * float((~answered[~ok]).mean()) if (~ok).any() else 0.0)

    grid = {round(float(t), 4) for t in np.linspace(0.0, 1.0, CURVE_STEPS)}
    thresholds = sorted(grid | {float(x) for x in scores} | {float(configured)})  # exact at every step
    points = [at(t) for t in thresholds]
    best, best_f1 = best_threshold(list(scores), list(f1_if_answered), list(answerable))
    return ThresholdCurve(configured, configured_source, at(configured)[0], float(best), 100 * best_f1, thresholds,
                          [p[0] for p in points], [p[1] for p in points], [p[2] for p in points])


def answer_funnel(results: list[QuestionResult], usable: set[str], candidates: int) -> AnswerFunnel:
    """The answer funnel over the answerable questions; the retrieval stage over those whose gold span is known."""
    answerable = [r for r in results if r.answerable]
    return AnswerFunnel(
        gold_passage_read=_percent([float(any(p.gold for p in r.passages)) for r in answerable if r.id in usable]),
        best_candidate_f1=_percent([r.f1_best_candidate for r in answerable]),
        first_candidate_f1=_percent([r.f1_if_answered for r in answerable]),
        answered_f1=_percent([r.f1 for r in answerable]),
        candidates=candidates)


def latency_stats(latencies: list[float]) -> LatencyStats:
    if not latencies:
        return LatencyStats(0.0, 0.0, 0.0, 0.0)
    a = np.array(latencies, dtype=float)
    return LatencyStats(float(np.percentile(a, 50)), float(np.percentile(a, 95)), float(a.mean()), float(a.max()))


def configured_threshold(assistant) -> tuple[float, str]:
    """The threshold `ask` uses by default, and where it comes from."""
    source = "reader calibration" if assistant.config.abstain_threshold is None else "config.abstain_threshold"
    return assistant.default_threshold, source


# -- the run --------------------------------------------------------------------------------------------
def _check_gold(item: GoldItem, documents: Mapping[str, Any]) -> str | None:
    if not item.answerable:
        return None
    if item.doc_id is None or item.answer_start is None:
        return f"{item.id}: answerable but without doc_id/answer_start; left out of retrieval and citation metrics"
    if item.doc_id not in documents:
        return f"{item.id}: document {item.doc_id!r} is not in the index"
    start, end = item.span
    found = documents[item.doc_id].text[start:end]
    if found != item.answers[0]:
        return f"{item.id}: the document reads {found!r} at answer_start, not {item.answers[0]!r}"
    return None


def _evaluate_one(assistant, item: GoldItem, threshold: float) -> QuestionResult:
    started = time.perf_counter()
    answer = assistant.ask(item.question, threshold=0.0)
    latency = time.perf_counter() - started
    offered = ([] if answer.abstained else [answer]) + answer.alternatives
    best = offered[0] if offered else None
    candidate = best.text if best is not None else None
    score = float(best.score) if best is not None else 0.0
    prediction = candidate if candidate is not None and score >= threshold else None
    cited = [CitedSpan(c.doc_id, c.start, c.end, c.text) for c in (best.citations if best is not None else [])]
    scored = item.answerable and prediction is not None and item.span is not None
    right = [citation_correct(c, item) for c in cited] if scored else []
    ranks, gold_keys = {}, gold_passages(item, assistant.index.passages)
    for mode in RETRIEVERS:
        hits = assistant.retrieve(item.question, top_k=RETRIEVAL_DEPTH, mode=mode)
        rank = next((n for n, h in enumerate(hits, start=1)
                     if (h.passage.doc_id, h.passage.start, h.passage.end) in gold_keys), None)
        ranks[mode] = rank
    passages = [h.passage for h in answer.passages]
    sentence = None
    if passages:
        sentence = baseline_sentence(item.question, passages[0], assistant.index.documents[passages[0].doc_id].text)
    base = sentence.text if sentence is not None else None
    base_right = (citation_correct(sentence, item) if item.answerable and sentence is not None and item.span
                  else None)
    return QuestionResult(
        id=item.id, question=item.question, answers=list(item.answers), doc_id=item.doc_id,
        answer_start=item.answer_start, answerable=item.answerable, candidate=candidate, score=score,
        prediction=prediction, exact_match=exact_match(prediction, item.answers), f1=f1_score(prediction, item.answers),
        f1_if_answered=f1_score(candidate, item.answers),
        f1_best_candidate=max((f1_score(a.text, item.answers) for a in offered), default=f1_score(None, item.answers)),
        citations=cited,
        citation_correct=right[0] if right else None, citation_correct_any=any(right) if right else None,
        ranks=ranks, latency_s=latency, baseline_prediction=base,
        baseline_exact_match=exact_match(base, item.answers), baseline_f1=f1_score(base, item.answers),
        baseline_citation_correct=base_right,
        passages=[RetrievedPassage(p.doc_id, p.start, p.end, p.text, (p.doc_id, p.start, p.end) in gold_keys)
                  for p in passages])


def evaluate(assistant, gold: str | Path | Iterable[Mapping[str, Any] | GoldItem], progress: bool = False,
             gold_name: str | None = None) -> EvalReport:
    """Evaluate `assistant` on the gold questions (a JSON Lines path, or dicts / GoldItems).

    One `ask` per question at threshold 0 gives each question's best candidate and score; the prediction at
    the assistant's threshold (config.abstain_threshold, else the reader's calibrated one) is derived from it,
    exactly as `ask` would decide. The reader is loaded and one question asked before timing starts."""
    items = load_gold(gold)
    threshold, source = configured_threshold(assistant)
    warnings = [w for w in (_check_gold(item, assistant.index.documents) for item in items) if w]
    usable = {i.id for i in items if i.answerable and i.span is not None and i.doc_id in assistant.index.documents}
    assistant.ask(items[0].question, threshold=0.0)  # warm-up: model load and first-call costs are not latency
    started = time.perf_counter()
    iterator: Iterable[GoldItem] = items
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(items, desc="evaluating", unit="question")
    results = [_evaluate_one(assistant, item, threshold) for item in iterator]
    elapsed = time.perf_counter() - started

    def cites(attr: str) -> list[bool | None]:
        return [getattr(r, attr) if r.id in usable else None for r in results]

    reader = answer_metrics([r.prediction for r in results], items, cites("citation_correct"),
                            cites("citation_correct_any"))
    baseline = answer_metrics([r.baseline_prediction for r in results], items, cites("baseline_citation_correct"),
                              cites("baseline_citation_correct"))
    retrieval = {mode: retrieval_metrics([r.ranks[mode] for r in results if r.id in usable]) for mode in RETRIEVERS}
    curve = threshold_curve([r.score for r in results], [r.f1_if_answered for r in results],
                            [r.answerable for r in results], threshold, source)
    funnel = answer_funnel(results, usable, 1 + assistant.config.alternatives)
    overall = Overall(len(items), sum(i.answerable for i in items), sum(not i.answerable for i in items), reader,
                      baseline, retrieval, curve, funnel, latency_stats([r.latency_s for r in results]))
    config = assistant.config
    meta = {
        "version": REPORT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "index": str(assistant.index_dir),
        "gold": gold_name or (str(gold) if isinstance(gold, (str, Path)) else "(in memory)"),
        "reader": str(config.reader),
        "embedder": str(config.embedder),
        "retriever": config.retriever,
        "top_k": config.top_k,
        "threshold": threshold,
        "threshold_source": source,
        "documents": len(assistant.index.documents),
        "passages": len(assistant.index.passages),
        "elapsed_s": elapsed,
    }
    return EvalReport(meta, overall, results, warnings)
