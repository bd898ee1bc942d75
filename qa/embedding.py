"""Sentence-transformers embeddings: float32 unit vectors, and a fingerprint of the model that made them."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from qa.errors import ModelError


@dataclass(frozen=True)
class ModelFingerprint:
    """What an index records of its embedding model, to refuse vectors from another one."""

    name: str
    dimension: int
    files_sha256: str


def files_sha256(folder: Path) -> str:
    """One hash over the names and bytes of a model folder's weight and config files."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in {".json", ".safetensors", ".bin", ".txt", ".model"}:
            digest.update(str(path.relative_to(folder)).encode())
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 22), b""):
                    digest.update(block)
    return digest.hexdigest()


class Embedder:
    """Encodes texts with a sentence-transformers model named by folder path or hub id."""

    def __init__(self, model: str, batch_size: int = 64, device: str = "cpu"):
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        self.name = model
        self.batch_size = batch_size
        if Path(model).exists():  # a local folder needs no hub
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            self.model = SentenceTransformer(model, device=device)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load embedding model {model!r}: {exc}") from exc

    @property
    def dimension(self) -> int:
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get())

    @cached_property
    def fingerprint(self) -> ModelFingerprint:
        folder = Path(self.name)
        digest = files_sha256(folder) if folder.is_dir() else self.name
        name = f"{folder.parent.name}/{folder.name}" if folder.is_dir() else self.name
        return ModelFingerprint(name=name, dimension=self.dimension, files_sha256=digest)

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """(len(texts), dimension) float32 unit vectors."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(texts, batch_size=self.batch_size, show_progress_bar=show_progress,
                                    convert_to_numpy=True, normalize_embeddings=True)
        return np.ascontiguousarray(vectors, dtype=np.float32)
