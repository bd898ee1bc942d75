"""Sentence-transformers embeddings: float32 unit vectors, and a fingerprint of the model that made them."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from qa.errors import ModelError
from qa.tokenizer import SharedTokenizer


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


class QueryEncoder:
    """A sentence-transformers model's own forward pass for one query, run through transformers alone.

    Importing sentence-transformers takes about 2 s (it loads its trainers and scikit-learn), most of a cold
    `qa ask`. For the classic pipeline folder (Transformer with a max_seq_length, mean pooling, optional
    Normalize, no default prompt), as all-MiniLM-L6-v2 ships, this computes the same vector without it;
    `open` returns None for any other folder, which sentence-transformers then encodes."""

    def __init__(self, folder: Path, max_length: int, lower_case: bool):
        import torch
        from transformers import AutoModel

        self.tokenizer = SharedTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
        self.max_length = max_length
        self.lower_case = lower_case

    @classmethod
    def open(cls, folder: Path) -> "QueryEncoder | None":
        modules = _json(folder / "modules.json") or []
        kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
        if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
            return None
        if (_json(folder / "config_sentence_transformers.json") or {}).get("default_prompt_name"):
            return None
        modes = {k for k, v in (_json(folder / modules[1]["path"] / "config.json") or {}).items()
                 if k.startswith("pooling_mode") and v is True}
        transformer = folder / modules[0]["path"]
        settings = _json(transformer / "sentence_bert_config.json") or {}
        if modes != {"pooling_mode_mean_tokens"} or not settings.get("max_seq_length"):
            return None
        return cls(transformer, settings["max_seq_length"], bool(settings.get("do_lower_case")))

    def encode(self, text: str) -> np.ndarray:
        """The unit vector of one text, as `SentenceTransformer.encode([text], normalize_embeddings=True)[0]`."""
        import torch

        text = text.strip().lower() if self.lower_case else text.strip()
        inputs = self.tokenizer([text], padding=True, truncation="longest_first", max_length=self.max_length,
                                return_tensors="pt")
        with torch.inference_mode():
            tokens = self.model(**inputs).last_hidden_state
            mask = inputs["attention_mask"].unsqueeze(-1).to(tokens.dtype)
            vector = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            vector = torch.nn.functional.normalize(vector, p=2, dim=1)
        return vector[0].numpy().astype(np.float32)


def _json(path: Path) -> dict | list | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


class Embedder:
    """Encodes passages with a sentence-transformers model named by folder path or hub id, and questions with
    its `QueryEncoder` where it has one (sentence-transformers is then imported only to index)."""

    def __init__(self, model: str, batch_size: int = 64, device: str = "cpu"):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.name = model
        self.batch_size = batch_size
        self.device = device
        folder = Path(model)
        if folder.exists():  # a local folder needs no hub
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            self.query_encoder = QueryEncoder.open(folder) if folder.is_dir() and device == "cpu" else None
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"cannot load embedding model {model!r}: {exc}") from exc
        if self.query_encoder is None:
            self.model  # load now: a bad model fails when the Embedder is made, not at the first question

    @cached_property
    def model(self):
        """The SentenceTransformer, loaded on first use."""
        from sentence_transformers import SentenceTransformer

        try:
            return SentenceTransformer(self.name, device=self.device)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load embedding model {self.name!r}: {exc}") from exc

    @property
    def dimension(self) -> int:
        if self.query_encoder is not None:
            return int(self.query_encoder.model.config.hidden_size)
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

    def encode_query(self, text: str) -> np.ndarray:
        """The unit vector of one question."""
        if self.query_encoder is not None:
            return self.query_encoder.encode(text)
        return self.encode([text])[0]
