"""BM25 over passage texts (bm25s, English stop words and Snowball stemming), persisted beside the dense index."""

from __future__ import annotations

import logging
from pathlib import Path


def _tokenize(texts: list[str], as_ids: bool = True):
    import bm25s
    import Stemmer

    return bm25s.tokenize(texts, stopwords="en", stemmer=Stemmer.Stemmer("english"), return_ids=as_ids,
                          show_progress=False)


class LexicalIndex:
    """Okapi BM25; `search` returns (position, score) pairs, best first, for passages sharing a term."""

    def __init__(self, texts: list[str]):
        import bm25s

        self.size = len(texts)
        self.bm25 = bm25s.BM25()
        if texts:
            self.bm25.index(_tokenize(texts), show_progress=False)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        k = min(k, self.size)
        tokens = _tokenize([query], as_ids=False)  # strings: ids would be of the query's own vocabulary
        if k == 0 or not tokens[0]:
            return []
        try:
            positions, scores = self.bm25.retrieve(tokens, k=k, show_progress=False)
        except (ValueError, KeyError):  # no query term is in the corpus vocabulary
            return []
        return [(int(p), float(s)) for p, s in zip(positions[0], scores[0]) if s > 0]

    def save(self, folder: Path) -> None:
        if self.size:
            self.bm25.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path, size: int) -> "LexicalIndex":
        import bm25s

        index = cls([])
        index.size = size
        if size:
            logging.getLogger("bm25s").setLevel(logging.ERROR)
            index.bm25 = bm25s.BM25.load(str(folder), show_progress=False)
        return index
