"""Reader mechanics with a real transformers QA model (small, built by the test): windows, offsets, scores."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa.documents import Document, normalise
from qa.errors import ModelError
from qa.passages import Passage, split_passages
from qa.reader import Reader

TEXT = ("The old lighthouse on Skerry Point was built in 1871 by the engineer Thomas Aird. "
        "It stood 38 metres tall and its lamp could be seen from 20 nautical miles away. "
        "In 1990 the light was automated, and the last keeper, Morag Bell, moved to the mainland.")


@pytest.fixture(scope="module")
def reader(tiny_reader) -> Reader:
    return Reader(tiny_reader, max_length=48, stride=16, max_answer_tokens=8)


def passage_of(text: str, doc_id: str = "d", offset: int = 0) -> Passage:
    return Passage(doc_id, offset, offset + len(text), text)


def test_long_passages_are_read_in_several_windows(reader):
    windows = reader.encode("Who built it?", [passage_of(TEXT)])
    assert len(windows["input_ids"]) > 1
    assert set(windows["overflow_to_sample_mapping"].tolist()) == {0}


def test_spans_map_back_to_document_characters(reader):
    prefix = "Preface text that is not in the passage. "
    document = prefix + TEXT
    spans = reader.read("Who built the lighthouse?", [passage_of(TEXT, offset=len(prefix))])
    assert spans
    for span in spans:
        assert document[span.start:span.end] == span.text
        assert len(reader.tokenizer(span.text, add_special_tokens=False)["input_ids"]) <= reader.max_answer_tokens
        assert 0.0 <= span.score <= 1.0


def test_spans_from_overlapping_windows_and_passages_are_merged(reader):
    document = Document("d", "t", TEXT, "mem")
    passages = split_passages(document, max_words=25, overlap_sentences=1)
    spans = reader.read("When was the light automated?", passages + passages)
    keys = [(s.doc_id, s.start, s.end) for s in spans]
    assert len(keys) == len(set(keys))
    assert spans == sorted(spans, key=lambda s: -s.score)


def test_scores_do_not_depend_on_the_other_passages(reader):
    """Each span is scored on its own, not by a softmax over what else was read."""
    alone = reader.read("Who was the last keeper?", [passage_of(TEXT, "a")])
    crowd = reader.read("Who was the last keeper?", [passage_of(TEXT, "a"), passage_of("Bananas are yellow.", "b")])
    scores = {(s.start, s.end): s.score for s in crowd if s.doc_id == "a"}
    for span in alone:
        assert scores[(span.start, span.end)] == pytest.approx(span.score, abs=1e-5)


def test_spans_never_run_into_the_next_paragraph(reader):
    text = "Harbour reopens\n\nWick port reopened.\nRepairs cost 4 million.\n\nShips\n\nreturned.\n" * 3
    spans = reader.read("When did the port reopen?", [passage_of(text)])
    assert spans
    assert not [s.text for s in spans if "\n\n" in s.text or ".\n" in s.text]


def test_spans_read_through_lines_wrapped_inside_a_sentence(reader):
    text = "The port of\nWick reopened\non Monday after\nrepairs costing\nfour million\npounds in all.\n" * 2
    spans = reader.read("When did the port reopen?", [passage_of(text)])
    assert [s.text for s in spans if "\n" in s.text]


def test_very_long_questions_still_leave_room_for_the_passage(reader):
    spans = reader.read("lighthouse " * 200 + "?", [passage_of(TEXT)])
    assert all(TEXT[s.start:s.end] == s.text for s in spans)


def test_no_passages_no_spans(reader):
    assert reader.read("Anything?", []) == []


def test_missing_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        Reader(str(tmp_path / "no-such-reader"))


@settings(max_examples=25, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=400),
       st.text(min_size=1, max_size=60))
def test_offsets_hold_for_any_text(reader, text, question):
    text = normalise(text)
    if not text.strip():
        return
    document = Document("d", "t", text, "mem")
    for span in reader.read(question, split_passages(document, max_words=30)):
        assert text[span.start:span.end] == span.text


def test_threads_sharing_a_reader_get_the_windows_they_would_get_alone(reader):
    """The chat reads several questions at once with one Reader: tokenizer settings must not leak between calls."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(f"Question {i}? " * (1 + i % 4), [passage_of(TEXT * (1 + i % 3))] * (1 + i % 5)) for i in range(400)]
    alone = [reader.encode(q, ps)["input_ids"].tolist() for q, ps in jobs]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda job: reader.encode(*job)["input_ids"].tolist(), jobs))
    assert together == alone
