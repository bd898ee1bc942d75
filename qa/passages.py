"""Sentence-aware passages: windows of whole sentences with overlap, as character offsets into a document."""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.documents import Document

# A sentence ends at . ! ? (maybe closed by quotes or brackets) before whitespace and a likely sentence start,
# or at a line break. Common abbreviations do not end sentences.
_BOUNDARY = re.compile(r"""(?<=[.!?])["'”’)\]]*\s+(?=["'“‘(\[]?[A-Z0-9])|\n+""")
_ABBREVIATIONS = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|Prof|St|Gen|Col|Lt|Sgt|Jr|Sr|vs|etc|No|Inc|Ltd|Co|Corp|U\.S|U\.K|e\.g|i\.e|[A-Z])\.$")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Passage:
    """A window of a document: `text == document.text[start:end]`."""

    doc_id: str
    start: int
    end: int
    text: str


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, whitespace trimmed; together they cover every word of `text`."""
    spans, start = [], 0
    for match in _BOUNDARY.finditer(text):
        if match.group().strip("\n") and _ABBREVIATIONS.search(text, 0, match.start()):
            continue
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [trimmed for span in spans if (trimmed := _trim(text, *span))]


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _split_long(text: str, start: int, end: int, max_words: int) -> list[tuple[int, int]]:
    """Cut a sentence longer than `max_words` into pieces of at most `max_words` words."""
    words = [m.span() for m in _WORD.finditer(text, start, end)]
    return [(words[i][0], words[min(i + max_words, len(words)) - 1][1]) for i in range(0, len(words), max_words)]


def sentence_around(text: str, start: int, end: int) -> tuple[int, int]:
    """The span of the sentence(s) that hold text[start:end]."""
    spans = [s for s in sentence_spans(text) if s[0] < end and s[1] > start] or [(start, end)]
    return spans[0][0], spans[-1][1]


def split_passages(doc: Document, max_words: int = 120, overlap_sentences: int = 1) -> list[Passage]:
    """Pack whole sentences into windows of at most `max_words` words; each window repeats the last
    `overlap_sentences` sentences of the one before, so an answer near a boundary is whole in one window."""
    units: list[tuple[int, int]] = []
    for start, end in sentence_spans(doc.text):
        units.extend(_split_long(doc.text, start, end, max_words))
    counts = [len(_WORD.findall(doc.text, s, e)) for s, e in units]
    passages, first = [], 0
    while first < len(units):
        last, words = first, counts[first]
        while last + 1 < len(units) and words + counts[last + 1] <= max_words:
            last += 1
            words += counts[last]
        start, end = units[first][0], units[last][1]
        passages.append(Passage(doc.id, start, end, doc.text[start:end]))
        if last + 1 >= len(units):
            break
        first = max(first + 1, last + 1 - overlap_sentences)
    return passages
