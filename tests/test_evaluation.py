"""Evaluation: SQuAD metrics on hand-computed cases, the evaluation's own scoring rules, and an end-to-end
run over the seed index (a random-weight reader: structure and retrieval are checked, not answer quality)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.errors import InputError
from qa.evaluation import (AnswerFunnel, CitedSpan, EvalReport, GoldItem, QuestionResult, RetrievedPassage,
                           answer_funnel, answer_metrics, baseline_sentence, citation_correct, evaluate, gold_passages,
                           load_gold, retrieval_metrics, threshold_curve)
from qa.metrics import best_threshold, exact_match, f1_score
from qa.normalize import normalize_answer
from qa.passages import Passage
from qa.report import PLOTS, compare_reports, format_comparison, render_markdown, write_report

PNG = b"\x89PNG\r\n\x1a\n"


# -- SQuAD normalisation and metrics, by hand ---------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("The Eiffel Tower", "eiffel tower"),            # article and case
    ("an apple a day", "apple day"),                 # every article
    ("theatre another", "theatre another"),          # articles only as whole words
    ("  Eiffel \n\t Tower  ", "eiffel tower"),       # whitespace collapsed
    ("U.S.A.!", "usa"),                              # punctuation removed, not replaced by spaces
    ("“Hello”—world…", "helloworld"),                # typographic quotes, dashes and ellipses too
    ("rock-'n'-roll", "rocknroll"),
    ("The", ""),
])
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_exact_match_ignores_articles_punctuation_whitespace_and_case():
    assert exact_match("the Eiffel  Tower.", ["Eiffel Tower"]) == 1.0
    assert exact_match("EIFFEL TOWER", ["an eiffel tower"]) == 1.0
    assert exact_match("Eiffel", ["Eiffel Tower"]) == 0.0


def test_f1_hand_computed():
    # pred tokens: cat sat on mat (4); gold: cat on mat (3); common 3 -> P 3/4, R 1, F1 6/7
    assert f1_score("The cat sat on the mat", ["cat on mat"]) == pytest.approx(6 / 7)
    # pred: paris france (2), gold: paris (1): P 1/2, R 1 -> 2/3
    assert f1_score("Paris, France", ["Paris"]) == pytest.approx(2 / 3)
    assert f1_score("London", ["Paris"]) == 0.0
    # repeated tokens count once each in the overlap: pred "a a b" -> [b]? no: "a" is an article, so pred = [b]
    assert f1_score("a a b", ["b"]) == 1.0
    # token multiset overlap: pred x x y (3), gold x y y (3): common x1 y1 = 2 -> P = R = 2/3
    assert f1_score("x x y", ["x y y"]) == pytest.approx(2 / 3)


def test_several_acceptable_answers_take_the_best():
    answers = ["Nikolay Bordyuzha", "Bordyuzha", "Secretary-General Bordyuzha"]
    assert exact_match("bordyuzha", answers) == 1.0
    assert exact_match("secretarygeneral Bordyuzha", answers) == 1.0  # the hyphen goes without a space
    assert f1_score("Nikolay", answers) == pytest.approx(2 / 3)  # vs "nikolay bordyuzha": P 1, R 1/2
    # "general bordyuzha": vs "nikolay bordyuzha" 1/2, vs "bordyuzha" 2/3 (P 1/2, R 1), vs the third 1/2
    assert f1_score("General Bordyuzha", answers) == pytest.approx(2 / 3)


def test_no_answer_scoring():
    assert exact_match(None, []) == 1.0 and f1_score(None, []) == 1.0        # right abstention
    assert exact_match("Moscow", []) == 0.0 and f1_score("Moscow", []) == 0.0  # answering the unanswerable
    assert exact_match(None, ["Moscow"]) == 0.0 and f1_score(None, ["Moscow"]) == 0.0  # abstaining wrongly
    assert f1_score("the", ["a"]) == 1.0  # both normalise to nothing: SQuAD counts that as a match


def test_best_threshold_hand_computed():
    # thresholds tried: 0, 0.45, 0.75, 0.9+eps -> mean F1 1.5/3, 1/3, 2/3, 1/3
    threshold, f1 = best_threshold([0.9, 0.6, 0.3], [1.0, 0.0, 0.5], [True, False, True])
    assert threshold == pytest.approx(0.75) and f1 == pytest.approx(2 / 3)
    # all unanswerable: abstaining on everything is best
    threshold, f1 = best_threshold([0.2, 0.4], [0.0, 0.0], [False, False])
    assert threshold > 0.4 and f1 == 1.0


# -- the evaluation's scoring rules --------------------------------------------------------------------
ITEM = GoldItem("q", "Who leads it?", ["Dmitry Rogozin", "Rogozin"], "doc1", 100)  # span [100, 114)


def test_gold_item_and_loading(tmp_path):
    assert ITEM.span == (100, 114) and ITEM.answerable
    assert GoldItem("u", "?", [], None, None).span is None
    path = tmp_path / "gold.jsonl"
    path.write_text(json.dumps({"id": "a", "question": "Q?", "answers": ["x"], "doc_id": "d", "answer_start": 3})
                    + "\n\n" + json.dumps({"id": "b", "question": "R?", "answers": [], "doc_id": None,
                                           "answer_start": None}) + "\n", encoding="utf-8")
    items = load_gold(path)
    assert [i.id for i in items] == ["a", "b"] and items[0].span == (3, 4) and not items[1].answerable
    with pytest.raises(InputError, match="twice"):
        load_gold([{"id": "a", "question": "Q", "answers": []}] * 2)
    with pytest.raises(InputError, match="not a gold question"):
        load_gold([{"question": "no id"}])
    with pytest.raises(InputError, match="not found"):
        load_gold(tmp_path / "missing.jsonl")


def test_citation_rules():
    assert citation_correct(CitedSpan("doc1", 105, 114, "Rogozin"), ITEM)          # overlaps the gold span
    assert citation_correct(CitedSpan("doc1", 90, 101, "Minister D"), ITEM)        # partial overlap counts
    assert not citation_correct(CitedSpan("doc1", 114, 120, "of Rus"), ITEM)       # [114, 120) touches, no overlap
    assert not citation_correct(CitedSpan("doc2", 100, 114, "Something else"), ITEM)  # right place, wrong document
    assert citation_correct(CitedSpan("doc2", 7, 21, "Dmitry Rogozin."), ITEM)     # an acceptable answer elsewhere
    assert not citation_correct(CitedSpan("doc1", 0, 3, "The"), GoldItem("u", "?", [], None, None))


def test_gold_passage_contains_the_span_else_overlaps_it():
    passages = [Passage("doc1", 0, 110, ""), Passage("doc1", 90, 200, ""), Passage("doc2", 0, 300, ""),
                Passage("doc1", 95, 400, "")]
    assert gold_passages(ITEM, passages) == {("doc1", 90, 200), ("doc1", 95, 400)}
    cut = [Passage("doc1", 0, 110, ""), Passage("doc1", 110, 200, "")]  # no window holds the whole span
    assert gold_passages(ITEM, cut) == {("doc1", 0, 110), ("doc1", 110, 200)}
    assert gold_passages(GoldItem("u", "?", [], None, None), passages) == set()


def test_baseline_picks_the_sentence_sharing_most_question_words_inside_the_passage():
    text = ("Who is the commission led by, who? Weather was fine. The commission is led by Dmitry Rogozin. "
            "Commission led. Not in the passage.")
    start, end = text.index("Weather"), text.index(" Not in")
    passage = Passage("d", start, end, text[start:end])
    best = baseline_sentence("Who is the commission led by?", passage, text)
    assert best.text == "The commission is led by Dmitry Rogozin."  # the first sentence matches more, outside
    assert text[best.start:best.end] == best.text and best.doc_id == "d"
    # a passage that starts or ends inside a sentence gives only its own part of it
    cut = Passage("d", text.index("Dmitry"), len(text), text[text.index("Dmitry"):])
    assert baseline_sentence("Who leads Dmitry Rogozin?", cut, text).text == "Dmitry Rogozin."


def test_answer_and_retrieval_metrics_hand_computed():
    items = [GoldItem("1", "?", ["the Eiffel Tower"]), GoldItem("2", "?", ["x y"]), GoldItem("3", "?", []),
             GoldItem("4", "?", [])]
    m = answer_metrics(["Eiffel Tower", None, None, "Paris"], items, [True, None, None, None], [True, None, None, None])
    assert (m.exact_match, m.f1) == (50.0, 50.0)
    assert (m.has_ans_exact_match, m.has_ans_f1, m.no_ans_accuracy) == (50.0, 50.0, 50.0)
    assert (m.no_answer_precision, m.no_answer_recall) == (50.0, 50.0)  # abstained on 2 and 3; 3 of 3, 4 unanswerable
    assert (m.answered, m.abstained, m.citation_accuracy) == (2, 2, 100.0)
    m = answer_metrics(["x", "x"], items[:2])
    assert m.has_ans_f1 == pytest.approx(100 * (0 + 2 / 3) / 2)
    r = retrieval_metrics([1, 3, None, 7])
    assert r.recall == {"1": 25.0, "5": 50.0, "10": 75.0}
    assert r.mrr == pytest.approx((1 + 1 / 3 + 0 + 1 / 7) / 4) and r.questions == 4


def test_threshold_curve():
    curve = threshold_curve([0.9, 0.6, 0.3], [1.0, 0.0, 0.5], [True, False, True], 0.5, "test")
    assert curve.thresholds[0] == 0.0 and curve.thresholds[-1] == 1.0
    assert curve.f1[0] == pytest.approx(50.0)                  # everything answered
    assert curve.f1_at_configured == pytest.approx(100 / 3)     # 0.9 and 0.6 answered, 0.3 abstains
    assert (curve.best, curve.f1_at_best) == (pytest.approx(0.75), pytest.approx(200 / 3))
    assert curve.f1[-1] == pytest.approx(100 / 3) and curve.no_ans_accuracy[-1] == 100.0
    assert curve.has_ans_f1[0] == pytest.approx(75.0)


# -- end to end over the seed index --------------------------------------------------------------------
GOLD = [  # (id, question, answers, doc, answer_start is found in the document text)
    ("rogozin", "Who will lead the commission on defense industry cooperation?", ["Dmitry Rogozin", "Rogozin"],
     "001_d5e288ef131ed605"),
    ("countries", "Which countries have enterprises where components for the defense sector can be organized?",
     ["Kazakhstan and Belarus, Kyrgyzstan and Armenia"], "000_2ef42ea9fb4c94c9"),
    ("date", "When did Putin speak at the CSTO summit in Bishkek?", ["November 27"], "003_6c9e51f5aab2450e"),
    ("chair", "When will Moscow take over the bloc's chairmanship?", ["2026", "in 2026"], "004_56e3f571953b1737"),
    ("capital", "What is the capital of Australia?", [], None),
]


@pytest.fixture(scope="module")
def gold(seed_assistant) -> list[dict]:
    return [{"id": i, "question": q, "answers": a, "doc_id": d,
             "answer_start": seed_assistant.document(d).text.index(a[0]) if d else None} for i, q, a, d in GOLD]


@pytest.fixture(scope="module")
def evaluated(seed_assistant, gold, tmp_path_factory) -> tuple[EvalReport, dict[str, Path]]:
    path = tmp_path_factory.mktemp("gold") / "gold.jsonl"
    path.write_text("".join(json.dumps(g) + "\n" for g in gold), encoding="utf-8")
    report = evaluate(seed_assistant, path)
    return report, write_report(report, tmp_path_factory.mktemp("report") / "latest")


def test_evaluation_structure(evaluated, seed_assistant):
    report, _ = evaluated
    o = report.overall
    assert (o.questions, o.answerable, o.unanswerable) == (5, 4, 1)
    assert not report.warnings
    assert [q.id for q in report.questions] == [g[0] for g in GOLD]
    assert o.threshold.configured == seed_assistant.reader.threshold
    for q in report.questions:
        assert q.latency_s > 0 and 0.0 <= q.score <= 1.0
        assert q.prediction is None or (q.prediction == q.candidate and q.score >= o.threshold.configured)
        assert q.exact_match == exact_match(q.prediction, q.answers) and q.f1 == f1_score(q.prediction, q.answers)
        assert q.baseline_prediction and q.baseline_f1 == f1_score(q.baseline_prediction, q.answers)
        for c in q.citations:
            assert seed_assistant.document(c.doc_id).text[c.start:c.end] == c.text
        assert (q.citation_correct is None) == (not q.answerable or q.prediction is None)
    assert o.reader.answered + o.reader.abstained == 5
    assert 0 <= o.latency.p50_s <= o.latency.p95_s <= o.latency.max_s
    assert len(o.threshold.thresholds) == len(o.threshold.f1) == len(o.threshold.no_ans_accuracy)


def test_answer_funnel_follows_each_question_from_passages_to_answer(evaluated, seed_assistant, gold):
    report, _ = evaluated
    answerable = [q for q in report.questions if q.answerable]
    for q in answerable:
        answer = seed_assistant.ask(q.question, threshold=0.0)
        offered = [answer] + answer.alternatives
        assert len(offered) <= 1 + seed_assistant.config.alternatives
        assert q.f1_best_candidate == max(f1_score(a.text, q.answers) for a in offered)
        assert q.f1_best_candidate >= q.f1_if_answered >= q.f1
    f = report.overall.funnel
    assert f.candidates == 1 + seed_assistant.config.alternatives
    assert f.gold_passage_read == pytest.approx(100 * sum(any(p.gold for p in q.passages) for q in answerable) / 4)
    assert f.best_candidate_f1 == pytest.approx(100 * sum(q.f1_best_candidate for q in answerable) / 4)
    assert f.first_candidate_f1 == pytest.approx(report.overall.threshold.has_ans_f1[0])
    assert f.answered_f1 == pytest.approx(report.overall.reader.has_ans_f1)
    assert f.best_candidate_f1 >= f.first_candidate_f1 >= f.answered_f1


def test_answer_funnel_hand_computed():
    def result(qid: str, answerable: bool, best: float, first: float, final: float, gold_read: bool):
        return QuestionResult(
            id=qid, question="?", answers=["a"] if answerable else [], doc_id=None, answer_start=None,
            answerable=answerable, candidate=None, score=0.0, prediction=None, exact_match=0.0, f1=final,
            f1_if_answered=first, f1_best_candidate=best, citations=[], citation_correct=None,
            citation_correct_any=None, ranks={}, latency_s=0.0, baseline_prediction=None, baseline_exact_match=0.0,
            baseline_f1=0.0, baseline_citation_correct=None, passages=[RetrievedPassage("d", 0, 1, "a", gold_read)])

    results = [result("1", True, 1.0, 0.5, 0.0, True), result("2", True, 0.5, 0.5, 0.5, False),
               result("3", False, 0.0, 0.0, 1.0, False), result("4", True, 0.0, 0.0, 0.0, True)]
    # the unanswerable question counts nowhere; question 4 has no known gold span, so no retrieval stage
    assert answer_funnel(results, usable={"1", "2"}, candidates=4) == AnswerFunnel(
        gold_passage_read=50.0, best_candidate_f1=50.0, first_candidate_f1=100 / 3, answered_f1=50 / 3, candidates=4)


def test_retrieval_ranks_are_those_of_the_retrievers(evaluated, seed_assistant, gold):
    report, _ = evaluated
    for q, g in zip(report.questions, gold):
        if not g["answers"]:
            assert q.ranks == {"dense": None, "bm25": None, "hybrid": None}
            continue
        end = g["answer_start"] + len(g["answers"][0])
        for mode, rank in q.ranks.items():
            hits = seed_assistant.retrieve(g["question"], top_k=10, mode=mode)
            holds = [h.passage.doc_id == g["doc_id"] and h.passage.start <= g["answer_start"] and end <= h.passage.end
                     for h in hits]
            assert rank == (holds.index(True) + 1 if any(holds) else None)
    for mode, m in report.overall.retrieval.items():
        assert m.questions == 4
        assert m.recall["1"] <= m.recall["5"] <= m.recall["10"]
        assert m.mrr == pytest.approx(sum(1 / q.ranks[mode] for q in report.questions if q.ranks[mode]) / 4)
    # these questions share their key words with the gold passage: the lexical and fused rankings find them
    assert report.overall.retrieval["bm25"].recall["10"] == 100.0
    assert report.overall.retrieval["hybrid"].recall["10"] >= 75.0


def test_prediction_at_the_threshold_is_what_ask_answers(seed_assistant, tiny_config, seed_index_master, gold):
    from qa.assistant import Assistant

    base = evaluate(seed_assistant, gold[:3])
    scores = sorted(q.score for q in base.questions)
    threshold = (scores[0] + scores[1]) / 2  # the lowest-scoring question abstains, the others answer
    assistant = Assistant.load(seed_index_master, tiny_config.with_(abstain_threshold=threshold))
    report = evaluate(assistant, gold[:3])
    assert report.overall.threshold.configured == threshold
    assert report.overall.threshold.configured_source == "config.abstain_threshold"
    for q in report.questions:
        answer = assistant.ask(q.question)
        assert answer.abstained == (q.prediction is None)
        assert answer.text == q.prediction
    assert sum(q.prediction is None for q in report.questions) >= 1


def test_artefacts_exist_and_parse(evaluated):
    report, paths = evaluated
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert data["overall"]["questions"] == 5 and len(data["questions"]) == 5
    assert set(data["overall"]["retrieval"]) == {"dense", "bm25", "hybrid"}
    assert data["questions"][0]["abstained"] == (data["questions"][0]["prediction"] is None)
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert markdown == render_markdown(report)
    for needle in ("| Exact match |", "Baseline", "HasAns F1", "NoAns accuracy", "Citation accuracy", "recall@1/5/10",
                   "Latency p50 / p95", "## Abstention threshold", "## Answer funnel", "worst failures",
                   "How it is scored"):
        assert needle in markdown
    for name, file in PLOTS.items():
        assert f"]({file})" in markdown
        assert paths[name].read_bytes().startswith(PNG) and paths[name].stat().st_size > 5000


def test_compare_reports(evaluated, tmp_path):
    report, paths = evaluated
    same = compare_reports(paths["json"], paths["json"])
    assert not same.flips and all(m.delta == 0 for m in same.metrics)
    names = [m.name for m in same.metrics]
    assert {"reader.exact_match", "reader.f1", "retrieval.bm25.recall.5", "latency.p95_s"} <= set(names)
    assert not any(n.startswith("threshold.f1.") or n == "threshold.thresholds" for n in names)

    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    first = data["questions"][0]
    right_before = first["exact_match"] >= 1.0
    first["exact_match"] = 0.0 if right_before else 1.0
    first["prediction"] = "something" if right_before else first["answers"][0]
    data["overall"]["reader"]["exact_match"] += 20.0
    changed = tmp_path / "b.json"
    changed.write_text(json.dumps(data), encoding="utf-8")
    comparison = compare_reports(paths["json"], changed)
    assert [f.id for f in comparison.flips] == [first["id"]]
    assert comparison.flips[0].improved == (not right_before)
    delta = {m.name: m.delta for m in comparison.metrics}
    assert delta["reader.exact_match"] == pytest.approx(20.0) and delta["reader.f1"] == 0.0
    text = format_comparison(comparison)
    assert "reader.exact_match" in text and "+20" in text and first["id"] in text
    assert ("wrong in A, right in B: 1" if not right_before else "right in A, wrong in B: 1") in text
    with pytest.raises(InputError):
        compare_reports(paths["json"], tmp_path / "missing.json")
