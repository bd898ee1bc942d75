"""Extractive reader: a transformers question-answering model picks answer spans out of passages.

Each passage is cut into token windows with a stride; every candidate span is scored on its own as the
margin of its start+end logits over the window's no-answer (CLS) logits, squashed to (0, 1), so that
scores compare across windows, passages and documents. A span never runs across a blank line or a line break
after the end of a sentence, into the next paragraph; lines hard-wrapped inside a sentence are read through.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.errors import ModelError
from qa.passages import Passage
from qa.tokenizer import SharedTokenizer

CALIBRATION_FILE = "docqa_reader.json"
PARAGRAPH_BREAK = re.compile(r"[.!?][\"”’)]*[ \t]*\n|\n[ \t]*\n")
MAX_QUESTION_TOKENS = 64


@dataclass(frozen=True)
class Span:
    """A candidate answer: `text == document.text[start:end]`; `score` in (0, 1), 0.5 = as likely as no answer."""

    doc_id: str
    start: int
    end: int
    text: str
    score: float


def _paragraph_numbers(text: str, char_starts: np.ndarray) -> np.ndarray:
    """The paragraph of `text` (0-based, split at PARAGRAPH_BREAK) in which each character offset lies."""
    breaks = np.array([m.end() for m in PARAGRAPH_BREAK.finditer(text)], dtype=np.int64)
    return np.searchsorted(breaks, char_starts, side="right")


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x > -50 else 0.0


class Reader:
    """Loads a question-answering model and its fast tokenizer from a folder path or hub id."""

    def __init__(self, model: str, max_length: int = 384, stride: int = 128, max_answer_tokens: int = 30,
                 batch_size: int = 16):
        import torch
        from transformers import AutoModelForQuestionAnswering
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
        if Path(model).is_dir():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        elif Path(model).is_absolute() or model.startswith("."):
            raise ModelError(f"reader model {model!r} not found: give a model folder or hub id "
                             "(the default reader is trained with `qa train-reader`)")
        try:
            self.tokenizer = SharedTokenizer.from_pretrained(model)
            self.model = AutoModelForQuestionAnswering.from_pretrained(model, dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load reader model {model!r}: {exc}") from exc
        if not self.tokenizer.is_fast:
            raise ModelError(f"reader model {model!r} has no fast tokenizer; offsets need one")
        self.model.eval()
        self.name = model
        self.max_length = max_length
        self.stride = stride
        self.max_answer_tokens = max_answer_tokens
        self.batch_size = batch_size
        calibration = Path(model) / CALIBRATION_FILE
        self.calibration = json.loads(calibration.read_text()) if calibration.is_file() else {}

    @property
    def threshold(self) -> float:
        """The abstention threshold calibrated on the reader's dev split, or 0.5 (as likely as no answer)."""
        return float(self.calibration.get("threshold", 0.5))

    def _question(self, question: str) -> str:
        """The question cut to its first tokens (64 at most, a third of a window), so windows keep room for context."""
        limit = min(MAX_QUESTION_TOKENS, self.max_length // 3)
        offsets = self.tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        return question if len(offsets) <= limit else question[:offsets[limit - 1][1]]

    def encode(self, question: str, passages: list[Passage]):
        """Token windows over every passage for this question, with offsets and their passage of origin."""
        question = self._question(question)
        return self.tokenizer([question] * len(passages), [p.text for p in passages], truncation="only_second",
                              max_length=self.max_length, stride=self.stride, return_overflowing_tokens=True,
                              return_offsets_mapping=True, padding="longest", return_tensors="pt")

    def logits(self, windows) -> tuple[np.ndarray, np.ndarray]:
        """Start and end logits of every window, (windows, tokens) each."""
        import torch

        inputs = {k: v for k, v in windows.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        starts, ends = [], []
        with torch.inference_mode():
            for i in range(0, len(inputs["input_ids"]), self.batch_size):
                out = self.model(**{k: v[i:i + self.batch_size] for k, v in inputs.items()})
                starts.append(out.start_logits.float().numpy())
                ends.append(out.end_logits.float().numpy())
        return np.concatenate(starts), np.concatenate(ends)

    def read(self, question: str, passages: list[Passage], per_window: int = 5) -> list[Span]:
        """Candidate spans from all passages, best first, with spans found in several windows merged."""
        if not passages:
            return []
        windows = self.encode(question, passages)
        start_logits, end_logits = self.logits(windows)
        best: dict[tuple[str, int, int], Span] = {}
        for w in range(len(start_logits)):
            passage = passages[int(windows["overflow_to_sample_mapping"][w])]
            context = np.array([s == 1 for s in windows.sequence_ids(w)])
            offsets = windows["offset_mapping"][w].numpy()
            paragraphs = _paragraph_numbers(passage.text, offsets[:, 0])
            for s, e, margin in self._best_in_window(start_logits[w], end_logits[w], context, paragraphs, per_window):
                start, end = passage.start + int(offsets[s][0]), passage.start + int(offsets[e][1])
                key = (passage.doc_id, start, end)
                span = Span(passage.doc_id, start, end, passage.text[start - passage.start:end - passage.start],
                            _sigmoid(margin))
                if key not in best or best[key].score < span.score:
                    best[key] = span
        return sorted(best.values(), key=lambda s: -s.score)

    def _best_in_window(self, start: np.ndarray, end: np.ndarray, context: np.ndarray, paragraphs: np.ndarray,
                        n: int):
        """The n best (start token, end token, margin over no-answer) spans inside the context of one window,
        each within one paragraph."""
        null = start[0] + end[0]
        scores = start[:, None] + end[None, :]
        length = np.arange(len(start))[None, :] - np.arange(len(start))[:, None]
        valid = (context[:, None] & context[None, :] & (length >= 0) & (length < self.max_answer_tokens)
                 & (paragraphs[:, None] == paragraphs[None, :]))
        scores = np.where(valid, scores, -np.inf)
        flat = np.argpartition(-scores, min(n, scores.size - 1), axis=None)[:n]
        return [(int(i // len(start)), int(i % len(start)), float(scores.flat[i] - null))
                for i in flat if np.isfinite(scores.flat[i])]
