"""Evaluation artefacts: report.json, a readable report.md, PNG plots, and the comparison of two reports."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.errors import InputError
from qa.evaluation import RECALL_AT, RETRIEVERS, EvalReport, QuestionResult, RetrievedPassage

PLOTS = {"recall": "recall_at_k.png", "threshold": "f1_vs_threshold.png", "funnel": "answer_funnel.png",
         "latency": "latency.png"}
WORST = 10
PASSAGES_SHOWN = 3
TRIM = 280
_NAMES = {"dense": "Dense", "bm25": "BM25", "hybrid": "Fused (RRF)"}


# -- writing --------------------------------------------------------------------------------------------
def write_report(report: EvalReport, out_dir: str | Path) -> dict[str, Path]:
    """Write report.json, report.md and the PNG plots into `out_dir`; returns their paths by name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "markdown": out / "report.md"}
    paths["json"].write_text(json.dumps(report.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for name, path in write_plots(report, out).items():
        paths[name] = path
    paths["markdown"].write_text(render_markdown(report), encoding="utf-8")
    return paths


def write_plots(report: EvalReport, out: Path) -> dict[str, Path]:
    """Recall@k per retriever, F1 against the abstention threshold, the answer funnel and the latency histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    o = report.overall
    paths = {name: out / file for name, file in PLOTS.items()}
    with plt.rc_context({"font.size": 11, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
                         "axes.spines.right": False}):
        fig, ax = plt.subplots(figsize=(7, 4.2))
        width = 0.26
        for n, mode in enumerate(RETRIEVERS):
            values = [o.retrieval[mode].recall[str(k)] for k in RECALL_AT]
            xs = [i + (n - 1) * width for i in range(len(RECALL_AT))]
            bars = ax.bar(xs, values, width, label=f"{_NAMES[mode]} (MRR {o.retrieval[mode].mrr:.2f})")
            ax.bar_label(bars, fmt="%.0f", fontsize=9, padding=2)
        ax.set_xticks(range(len(RECALL_AT)), [f"recall@{k}" for k in RECALL_AT])
        ax.set_ylim(0, 110)
        ax.set_yticks(range(0, 101, 20))
        ax.set_ylabel("gold passage retrieved (%)")
        ax.set_title(f"Retrieval: gold passage in the top k ({o.retrieval[RETRIEVERS[0]].questions} answerable questions)",
                     pad=30)
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=9, frameon=False)
        fig.tight_layout()
        fig.savefig(paths["recall"], dpi=120, bbox_inches="tight")
        plt.close(fig)

        t = o.threshold
        fig, ax = plt.subplots(figsize=(7, 4.2))
        ax.plot(t.thresholds, t.f1, lw=2.2, drawstyle="steps-pre", label="F1, all questions")
        ax.plot(t.thresholds, t.has_ans_f1, lw=1.4, drawstyle="steps-pre", ls="--", label="F1, answerable")
        ax.plot(t.thresholds, t.no_ans_accuracy, lw=1.4, drawstyle="steps-pre", ls=":", label="abstention accuracy, unanswerable")
        ax.axvline(t.configured, color="black", lw=1, label=f"configured {t.configured:.3g}: F1 {t.f1_at_configured:.1f}")
        ax.axvline(t.best, color="tab:red", lw=1, ls="-.", label=f"best {t.best:.3g}: F1 {t.f1_at_best:.1f}")
        scores = [q.score for q in report.questions]
        for answerable, colour, label in ((True, "tab:blue", "scores, answerable"),
                                          (False, "tab:gray", "scores, unanswerable")):
            xs = [q.score for q in report.questions if q.answerable == answerable]
            if xs:
                ax.plot(xs, [2.5 if answerable else 6.5] * len(xs), "|", color=colour, ms=9, alpha=0.6, label=label)
        reach = max(scores + [t.configured, t.best])
        zoom = reach < 0.3  # a reader whose scores are all small: show where they are
        ax.set_xlim(0, min(1.0, 1.15 * reach) if zoom else 1.0)
        ax.set_ylim(0, 105)
        ax.set_xlabel("abstention threshold (answer when score ≥ threshold)" + (", zoomed on the scores" if zoom else ""))
        ax.set_ylabel("%")
        ax.set_title("Answer F1 against the abstention threshold")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=9, frameon=False)
        fig.tight_layout()
        fig.savefig(paths["threshold"], dpi=120, bbox_inches="tight")
        plt.close(fig)

        fig, ax = plt.subplots(figsize=(7, 3.4))
        stages = funnel_stages(report)
        bars = ax.barh(range(len(stages)), [v for _, v in stages], color=["tab:gray"] + ["tab:blue"] * (len(stages) - 1))
        ax.bar_label(bars, fmt="%.1f", padding=3, fontsize=9)
        ax.set_yticks(range(len(stages)), [name for name, _ in stages], fontsize=9)
        ax.invert_yaxis()
        ax.set_xlim(0, 110)
        ax.set_xlabel("% of answerable questions (first bar) / their F1 (the others)")
        ax.set_title(f"Where the {o.answerable} answerable questions lose F1")
        fig.tight_layout()
        fig.savefig(paths["funnel"], dpi=120, bbox_inches="tight")
        plt.close(fig)

        ms = [1000 * q.latency_s for q in report.questions]
        fig, ax = plt.subplots(figsize=(7, 4.2))
        ax.hist(ms, bins=min(30, max(5, len(ms) // 3)), color="tab:blue", alpha=0.8)
        for value, label, style in ((1000 * o.latency.p50_s, "p50", "-"), (1000 * o.latency.p95_s, "p95", "--")):
            ax.axvline(value, color="black", ls=style, lw=1.2, label=f"{label} {value:.0f} ms")
        ax.set_xlabel("latency of one ask() (ms)")
        ax.set_ylabel("questions")
        ax.set_title(f"Latency per question ({len(ms)} questions)")
        ax.legend(fontsize=9)
        fig.tight_layout()
        fig.savefig(paths["latency"], dpi=120, bbox_inches="tight")
        plt.close(fig)
    return paths


# -- markdown -------------------------------------------------------------------------------------------
def _trim(text: str, limit: int = TRIM) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _excerpt(p: RetrievedPassage, q: QuestionResult, limit: int = TRIM) -> str:
    """The passage trimmed; a gold passage is shown around the gold answer, which is in bold."""
    if not (p.gold and q.answer_start is not None and q.answers and p.start <= q.answer_start):
        return _trim(p.text, limit)
    start = q.answer_start - p.start
    end = min(start + len(q.answers[0]), len(p.text))
    room = max(limit - (end - start), 40) // 2
    before, after = " ".join(p.text[max(0, start - room):start].split()), " ".join(p.text[end:end + room].split())
    if start > room and " " in before:
        before = before.split(" ", 1)[1]  # no cut word at either end
    if end + room < len(p.text) and " " in after:
        after = after.rsplit(" ", 1)[0]
    return (("…" if start > room else "") + before + (" " if p.text[start - 1:start].isspace() else "")
            + f"**{' '.join(p.text[start:end].split())}**" + (" " if p.text[end:end + 1].isspace() else "")
            + after + ("…" if end + room < len(p.text) else ""))


def headline(report: EvalReport) -> list[tuple[str, str, str]]:
    """(metric, reader, baseline) rows of the headline table."""
    o, r, b = report.overall, report.overall.reader, report.overall.baseline
    rows = [("Exact match", f"{r.exact_match:.1f}", f"{b.exact_match:.1f}"),
            ("F1", f"{r.f1:.1f}", f"{b.f1:.1f}"),
            ("HasAns EM", f"{r.has_ans_exact_match:.1f}", f"{b.has_ans_exact_match:.1f}"),
            ("HasAns F1", f"{r.has_ans_f1:.1f}", f"{b.has_ans_f1:.1f}"),
            ("NoAns accuracy", f"{r.no_ans_accuracy:.1f}", f"{b.no_ans_accuracy:.1f}"),
            ("No-answer precision / recall", f"{r.no_answer_precision:.1f} / {r.no_answer_recall:.1f}", "– (never abstains)"),
            ("Citation accuracy (first / any)", f"{r.citation_accuracy:.1f} / {r.citation_accuracy_any:.1f}",
             f"{b.citation_accuracy:.1f}"),
            ("Answered / abstained", f"{r.answered} / {r.abstained}", f"{b.answered} / {b.abstained}")]
    for mode in RETRIEVERS:
        m = o.retrieval[mode]
        recall = " / ".join(f"{m.recall[str(k)]:.1f}" for k in RECALL_AT)
        rows.append((f"{_NAMES[mode]} recall@1/5/10, MRR", f"{recall}, {m.mrr:.3f}", ""))
    rows.append(("Latency p50 / p95", f"{1000 * o.latency.p50_s:.0f} ms / {1000 * o.latency.p95_s:.0f} ms", ""))
    return rows


def funnel_stages(report: EvalReport) -> list[tuple[str, float]]:
    """(stage, value) of the answer funnel, in order: retrieval, the reader's candidates, its choice, abstention."""
    f, m = report.overall.funnel, report.meta
    return [(f"gold passage among the {m['top_k']} read", f.gold_passage_read),
            (f"best of the reader's {f.candidates} candidates", f.best_candidate_f1),
            ("reader's first candidate (never abstains)", f.first_candidate_f1),
            (f"answer at threshold {m['threshold']:.3f}", f.answered_f1)]


def worst_failures(report: EvalReport, n: int = WORST) -> list[QuestionResult]:
    """The n worst questions: lowest F1 first; among equals, confident wrong answers before abstentions."""
    failed = [q for q in report.questions if q.exact_match < 1.0]
    return sorted(failed, key=lambda q: (q.f1, q.prediction is None, -q.score, q.id))[:n]


def render_markdown(report: EvalReport) -> str:
    """The readable report: headline table, threshold and funnel sections, plots, rules, and the worst failures."""
    o, m, t = report.overall, report.meta, report.overall.threshold
    lines = ["# docqa evaluation",
             "",
             f"Index `{m['index']}` ({m['documents']} documents, {m['passages']} passages), gold `{m['gold']}`: "
             f"{o.questions} questions ({o.answerable} answerable, {o.unanswerable} unanswerable). "
             f"Reader `{m['reader']}`, retriever {m['retriever']}, top {m['top_k']} passages. "
             f"Run {m['created']}, {m['elapsed_s']:.1f} s.",
             ""]
    if report.warnings:
        lines += ["**Gold-set warnings:**", ""] + [f"- {w}" for w in report.warnings] + [""]
    lines += ["## Headline", "",
              f"Answer metrics in percent at the configured threshold {t.configured:.3f}. The baseline answers every "
              "question with the sentence of the top fused passage that shares most words with the question.", "",
              "| Metric | Reader | Baseline (best sentence) |", "| --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in headline(report)]
    lines += ["", "## Abstention threshold", "",
              f"- Configured threshold: **{t.configured:.3f}** ({t.configured_source}); F1 there **{t.f1_at_configured:.1f}**.",
              f"- Best threshold on this gold set: **{t.best:.3f}**; F1 there **{t.f1_at_best:.1f}** "
              "(tuned on the evaluation data itself, so an optimistic figure: a calibration check, not a score).",
              f"- No abstention at all (threshold 0): F1 {t.f1[0]:.1f}.", "",
              "## Answer funnel", "",
              "Where the answerable questions lose F1. Each F1 stage bounds the ones after it, so the drop to a stage is "
              "what it costs: the reader's choice among its candidates, then abstention. The first stage is the share "
              "of questions whose gold passage the reader is given; it is not a strict bound, since an answer may "
              "also stand in another passage.", "",
              "| Stage | Answerable questions |", "| --- | --- |"]
    stages = funnel_stages(report)
    lines += [f"| {name} | {value:.1f} {'% retrieved' if n == 0 else 'F1'} |" for n, (name, value) in enumerate(stages)]
    lines += ["", "## Plots", "",
              f"![Recall@k per retriever]({PLOTS['recall']})", "",
              f"![F1 against the abstention threshold]({PLOTS['threshold']})", "",
              f"![Answer funnel]({PLOTS['funnel']})", "",
              f"![Latency histogram]({PLOTS['latency']})", "",
              "## How it is scored", "",
              "- **EM / F1**: SQuAD normalisation (lower case, no punctuation, no articles a/an/the, single spaces), "
              "maximum over the acceptable answers. Abstaining scores 1 on an unanswerable question and 0 on an "
              "answerable one; answering an unanswerable question scores 0.",
              "- **No-answer precision / recall**: abstentions that were on unanswerable questions / unanswerable "
              "questions abstained on.",
              "- **Citation accuracy**: over answered answerable questions, the share whose first citation (or, for "
              "*any*, one of its citations) lies in the gold document and overlaps the gold answer span. A citation "
              "whose text is itself an acceptable answer (after normalisation) also counts, in any document, "
              "since the same answer may stand in several documents.",
              "- **Retrieval**: the gold passage is a passage of the gold document whose span contains the gold "
              "answer span (or, if the span crosses every passage boundary, one that overlaps it); recall@k is the "
              "share of answerable questions with a gold passage in the top k, MRR uses the rank of the first one "
              "in the top 10 (0 when absent). Unanswerable questions are left out.",
              "- **Threshold curve**: each question is asked once at threshold 0; its best candidate (the answer, or "
              "the first alternative when it abstained) is kept if its score ≥ the threshold.",
              "- **Latency**: wall-clock time of one `ask()` (retrieval and reading), after one warm-up question.",
              "", f"## {min(WORST, len(worst_failures(report)))} worst failures", ""]
    failures = worst_failures(report)
    if not failures:
        lines += ["None: every question is an exact match.", ""]
    for n, q in enumerate(failures, start=1):
        gold = " / ".join(f"“{a}”" for a in q.answers) if q.answers else "(unanswerable)"
        pred = f"“{q.prediction}”" if q.prediction is not None else (
            f"(abstained; best candidate “{q.candidate}”)" if q.candidate is not None else "(abstained)")
        ranks = ", ".join(f"{mode} {q.ranks.get(mode) or '–'}" for mode in RETRIEVERS) if q.answerable else "–"
        lines += [f"### {n}. `{q.id}`: {q.question}", "",
                  f"- Gold: {gold}" + (f" in `{q.doc_id}` at {q.answer_start}" if q.doc_id else ""),
                  f"- Prediction: {pred}, score {q.score:.3f}, F1 {100 * q.f1:.0f}",
                  f"- Baseline: “{_trim(q.baseline_prediction or '', 160)}”, F1 {100 * q.baseline_f1:.0f}",
                  f"- Gold passage rank (top 10): {ranks}",
                  "- Top passages given to the reader:"]
        for p in q.passages[:PASSAGES_SHOWN]:
            mark = " **(gold)**" if p.gold else ""
            lines.append(f"  - `{p.doc_id}` {p.start}–{p.end}{mark}: {_excerpt(p, q)}")
        lines.append("")
    return "\n".join(lines)


# -- comparison -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MetricDelta:
    name: str
    a: float | None
    b: float | None

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a


@dataclass(frozen=True)
class Flip:
    """A question whose correctness (exact match, or abstention on an unanswerable one) changed from A to B."""

    id: str
    question: str
    improved: bool
    a: str | None
    b: str | None


@dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    metrics: list[MetricDelta]
    flips: list[Flip]
    only_in_a: list[str]
    only_in_b: list[str]

    @property
    def improved(self) -> list[Flip]:
        return [f for f in self.flips if f.improved]

    @property
    def regressed(self) -> list[Flip]:
        return [f for f in self.flips if not f.improved]


def _flatten(value: Any, prefix: str = "") -> dict[str, float]:
    """Dotted names of the numeric leaves; the threshold curve's lists are left out."""
    if isinstance(value, dict):
        out: dict[str, float] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {prefix: float(value)}
    return {}


def _load(report: str | Path | dict) -> tuple[str, dict]:
    if isinstance(report, dict):
        return "(in memory)", report
    path = Path(report)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"report {path} not found") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"report {path} is not JSON: {exc}") from None
    if not isinstance(data, dict) or "overall" not in data or "questions" not in data:
        raise InputError(f"{path} is not a report.json written by `qa eval`")
    return str(path), data


def compare_reports(a: str | Path | dict, b: str | Path | dict) -> Comparison:
    """Per-metric A, B and delta, and the questions whose correctness flipped between two report.json."""
    name_a, ra = _load(a)
    name_b, rb = _load(b)
    fa, fb = _flatten(ra["overall"]), _flatten(rb["overall"])
    metrics = [MetricDelta(k, fa.get(k), fb.get(k)) for k in list(fa) + [k for k in fb if k not in fa]]
    qa_, qb = {q["id"]: q for q in ra["questions"]}, {q["id"]: q for q in rb["questions"]}
    flips = []
    for qid, qa in qa_.items():
        if qid in qb and (qa["exact_match"] >= 1.0) != (qb[qid]["exact_match"] >= 1.0):
            flips.append(Flip(qid, qa["question"], qb[qid]["exact_match"] >= 1.0, qa["prediction"],
                              qb[qid]["prediction"]))
    return Comparison(name_a, name_b, metrics, flips, [i for i in qa_ if i not in qb], [i for i in qb if i not in qa_])


def format_comparison(c: Comparison) -> str:
    """A plain-text table of the metrics and the flipped questions."""
    width = max([len(m.name) for m in c.metrics] + [6])

    def num(x: float | None, sign: str = "") -> str:
        if x is None:
            return "–"
        if float(x).is_integer():
            return f"{int(x):{sign}d}"
        return f"{x:{sign}.2f}" if abs(x) >= 10 else f"{x:{sign}.4g}"

    lines = [f"A: {c.a}", f"B: {c.b}", "", f"{'metric':<{width}}  {'A':>10}  {'B':>10}  {'B - A':>10}"]
    for m in c.metrics:
        delta = "0" if m.delta == 0 else num(m.delta, "+")
        lines.append(f"{m.name:<{width}}  {num(m.a):>10}  {num(m.b):>10}  {delta:>10}")

    def show(text: str | None) -> str:
        return "(abstained)" if text is None else f"“{_trim(text, 60)}”"

    for title, group in (("wrong in A, right in B", c.improved), ("right in A, wrong in B", c.regressed)):
        lines += ["", f"{title}: {len(group)}"]
        lines += [f"  {f.id}: {show(f.a)} -> {show(f.b)}  ({_trim(f.question, 70)})" for f in group]
    if c.only_in_a or c.only_in_b:
        lines += ["", f"only in A: {', '.join(c.only_in_a) or '–'}", f"only in B: {', '.join(c.only_in_b) or '–'}"]
    return "\n".join(lines)
