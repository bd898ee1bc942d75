"""Dense and BM25 retrieval fused by reciprocal rank fusion."""

from __future__ import annotations

import pytest

from qa.assistant import Assistant
from qa.errors import InputError
from qa.retrieval import reciprocal_rank_fusion

FILLER = ["harvest festival in the valley village", "the choir rehearses every Thursday evening",
          "new bus timetable for the northern suburbs", "the library extends its opening hours",
          "a bakery wins the regional bread prize", "swimming pool closed for repairs in June"]


@pytest.fixture(scope="module")
def corpus_assistant(tmp_path_factory, tiny_config):
    folder = tmp_path_factory.mktemp("fusion")
    docs = folder / "docs"
    docs.mkdir()
    for i in range(60):
        topic = FILLER[i % len(FILLER)]
        (docs / f"filler{i:02d}.txt").write_text(f"Notice {i}\nLocal news: {topic}. Residents of district {i} "
                                                 f"were told about the {topic} by the council.")
    # Found by BM25 only: a part code that means nothing to the embedding model.
    (docs / "partcode.txt").write_text("Spare parts\nWarehouse bin QX7Z-4471 holds gaskets for the old boiler.")
    # Found by the dense retriever only: the same meaning as the question in other words.
    (docs / "physician.txt").write_text("Clinic\nA physician examined the sick child and prescribed medicine.")
    return Assistant.build([docs], folder / "index", tiny_config)


def test_rrf_sums_reciprocal_ranks():
    fused = reciprocal_rank_fusion([[7, 3], [3, 9]], k=60)
    assert fused[3] == pytest.approx(1 / 62 + 1 / 61)
    assert fused[7] == pytest.approx(1 / 61)
    assert max(fused, key=fused.get) == 3


def test_a_passage_only_bm25_finds_reaches_the_fused_top(corpus_assistant):
    question = "What did residents of the district hear from the council about QX7Z-4471?"
    dense = [h.passage.doc_id for h in corpus_assistant.retrieve(question, top_k=5, mode="dense")]
    hybrid = corpus_assistant.retrieve(question, top_k=5, mode="hybrid")
    assert "partcode" not in dense
    hit = next(h for h in hybrid if h.passage.doc_id == "partcode")
    assert hit.lexical_rank == 1


def test_a_passage_only_dense_retrieval_finds_reaches_the_fused_top(corpus_assistant):
    question = "Which doctor treated an ill kid?"
    lexical = corpus_assistant.retrieve(question, top_k=5, mode="bm25")
    assert "physician" not in [h.passage.doc_id for h in lexical]
    hit = next(h for h in corpus_assistant.retrieve(question, top_k=5) if h.passage.doc_id == "physician")
    assert hit.lexical_rank is None and hit.dense_rank == 1


def test_hits_keep_both_ranks_and_scores(corpus_assistant):
    for hit in corpus_assistant.retrieve("bus timetable for the northern suburbs", top_k=5):
        assert hit.dense_rank is not None and hit.dense_score is not None
        if hit.lexical_rank is not None:
            assert hit.lexical_score > 0


def test_unknown_mode_is_an_error(corpus_assistant):
    with pytest.raises(InputError, match="retriever mode"):
        corpus_assistant.retrieve("anything", mode="magic")
