"""What `Assistant.ask` returns: typed answers with citations into the documents."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from qa.retrieval import Hit


@dataclass(frozen=True)
class Citation:
    """Where an answer stands: `text == document.text[start:end]`, inside the sentence that begins at
    `sentence_start`. `page` is the 1-based PDF page, None for other documents."""

    doc_id: str
    title: str
    start: int
    end: int
    text: str
    sentence: str
    sentence_start: int
    page: int | None = None


@dataclass(frozen=True)
class Answer:
    """An answer, or an abstention (`abstained`, `text` None, and the `reason`)."""

    text: str | None
    score: float
    abstained: bool
    reason: str | None
    citations: list[Citation] = field(default_factory=list)
    alternatives: list["Answer"] = field(default_factory=list)
    passages: list[Hit] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The JSON object of `qa ask --json` and of the chat's `/ask` endpoint."""
        return {
            "answer": self.text,
            "score": round(self.score, 4),
            "abstained": self.abstained,
            "reason": self.reason,
            "citations": [asdict(c) for c in self.citations],
            "alternatives": [{"answer": a.text, "score": round(a.score, 4), "citations": [asdict(c) for c in a.citations]}
                             for a in self.alternatives],
        }
