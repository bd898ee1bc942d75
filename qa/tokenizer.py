"""Loading a fast tokenizer that several threads can share."""

from __future__ import annotations

import threading
from pathlib import Path


class SharedTokenizer:
    """A Hugging Face fast tokenizer behind a lock. transformers sets padding and truncation on the one Rust
    tokenizer at every call, so concurrent calls (the chat answers several questions at once) would otherwise
    see each other's settings and return windows of unequal length. Tokenising takes a millisecond or two."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(cls, model: str | Path) -> "SharedTokenizer":
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(model))

    def __call__(self, *args, **kwargs):
        with self._lock:
            return self.tokenizer(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.tokenizer, name)
