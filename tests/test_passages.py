"""Passages and sentences are exact character windows of the document text."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from qa.documents import Document, normalise
from qa.passages import sentence_around, sentence_spans, split_passages

WORDS = st.sampled_from(["The", "river", "Dr.", "Smith", "said", "42", "km.", "Why?", "Yes!", "“Go”", "U.S.", "a",
                         "\n", "\n\n", "e.g.", "(note)", "é", "—", "3.5", "Mr.", "Paris."])
TEXTS = st.lists(WORDS, min_size=1, max_size=300).map(" ".join).map(normalise).filter(str.strip)


def doc(text: str) -> Document:
    return Document("d", "t", text, "mem")


@settings(max_examples=200, deadline=None)
@given(TEXTS, st.integers(5, 80), st.integers(0, 3))
def test_passages_are_exact_windows_covering_every_word(text, max_words, overlap):
    passages = split_passages(doc(text), max_words, overlap)
    covered = set()
    for p in passages:
        assert text[p.start:p.end] == p.text
        assert len(p.text.split()) <= max_words
        covered.update(range(p.start, p.end))
    for word in re.finditer(r"\S+", text):
        assert word.start() in covered


@settings(max_examples=200, deadline=None)
@given(TEXTS)
def test_sentences_are_ordered_trimmed_and_hold_their_offsets(text):
    spans = sentence_spans(text)
    assert spans == sorted(spans)
    for start, end in spans:
        assert text[start:end] == text[start:end].strip()
    for a, b in zip(spans, spans[1:]):
        assert a[1] <= b[0]


def test_sentence_boundaries_respect_abbreviations_and_quotes():
    text = 'Dr. Lee met Mr. Park in the U.S. capital. "It went well," she said. Talks resume on 3 May.'
    sentences = [text[s:e] for s, e in sentence_spans(text)]
    assert sentences == ['Dr. Lee met Mr. Park in the U.S. capital.', '"It went well," she said.',
                         'Talks resume on 3 May.']


def test_sentence_around_a_span():
    text = "First one here. The answer is Lisbon today. Last one."
    start = text.index("Lisbon")
    s, e = sentence_around(text, start, start + 6)
    assert text[s:e] == "The answer is Lisbon today."


def test_consecutive_passages_overlap_by_whole_sentences():
    text = " ".join(f"Sentence number {i} is here." for i in range(40))
    passages = split_passages(doc(text), max_words=20, overlap_sentences=1)
    assert len(passages) > 5
    for a, b in zip(passages, passages[1:]):
        assert b.start < a.end  # the last sentence of a opens b
        assert text[b.start:a.end].endswith(".")
