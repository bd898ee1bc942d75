"""Hybrid retrieval: dense (FAISS) and lexical (BM25) rankings fused by reciprocal rank fusion."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qa.errors import InputError
from qa.index import PassageIndex
from qa.passages import Passage

MODES = ("hybrid", "dense", "bm25")


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with its fused score and its rank (1-based, None if not found) in each retriever."""

    passage: Passage
    score: float
    dense_rank: int | None
    lexical_rank: int | None
    dense_score: float | None = None
    lexical_score: float | None = None


def reciprocal_rank_fusion(rankings: list[list[int]], k: int = 60) -> dict[int, float]:
    """Sum of 1 / (k + rank) over the rankings each item appears in."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return fused


def retrieve(index: PassageIndex, query_vector: np.ndarray, question: str, top_k: int, mode: str = "hybrid",
             rrf_k: int = 60, depth: int | None = None, lexical_floor: float = 0.1) -> list[Hit]:
    """The `top_k` best passages for a question; each retriever looks `depth` deep before fusion.

    BM25 matches scoring under `lexical_floor` times the best one share only common words with the question;
    they are dropped, so that they do not outvote a passage that one retriever alone finds."""
    if mode not in MODES:
        raise InputError(f"retriever mode must be one of {', '.join(MODES)}, not {mode!r}")
    depth = depth or max(4 * top_k, 20)
    dense = index.search_dense(query_vector, depth) if mode != "bm25" else []
    lexical = index.search_lexical(question, depth) if mode != "dense" else []
    lexical = [(p, s) for p, s in lexical if s >= lexical_floor * lexical[0][1]]
    dense_at = {pos: (rank, score) for rank, (pos, score) in enumerate(dense, start=1)}
    lexical_at = {pos: (rank, score) for rank, (pos, score) in enumerate(lexical, start=1)}
    fused = reciprocal_rank_fusion([[p for p, _ in dense], [p for p, _ in lexical]], rrf_k)
    best = sorted(fused, key=lambda pos: (-fused[pos], pos))[:top_k]
    return [Hit(passage=index.passages[pos], score=fused[pos],
                dense_rank=dense_at.get(pos, (None, None))[0], lexical_rank=lexical_at.get(pos, (None, None))[0],
                dense_score=dense_at.get(pos, (None, None))[1], lexical_score=lexical_at.get(pos, (None, None))[1])
            for pos in best]
