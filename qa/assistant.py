"""The Assistant: build or load an index, answer questions with cited spans, or abstain."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from qa.answer import Answer, Citation
from qa.config import Config
from qa.documents import Document, LoadFailure, load_documents, normalise
from qa.embedding import Embedder
from qa.errors import DocumentError, InputError, QuestionError
from qa.index import IndexSettings, PassageIndex, load_index, lock_for, save_index
from qa.normalize import normalize_answer
from qa.passages import sentence_around, split_passages
from qa.reader import Reader, Span
from qa.retrieval import Hit, retrieve
from qa.vector_store import create_store

_WORDS = re.compile(r"\w", re.UNICODE)


@dataclass(frozen=True)
class DocumentInfo:
    """An indexed document, as the chat's documents panel lists it."""

    id: str
    title: str
    source: str
    chars: int
    passages: int


@dataclass(frozen=True)
class UpdateReport:
    """What the last build, add or remove did: documents added or removed, files skipped and why."""

    added: list[DocumentInfo] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[LoadFailure] = field(default_factory=list)


class Assistant:
    """Question answering over one index. Build with `Assistant.build`, open with `Assistant.load`."""

    def __init__(self, index: PassageIndex, index_dir: str | Path, config: Config, embedder: Embedder):
        self.index = index
        self.index_dir = Path(index_dir)
        self.config = config
        self.embedder = embedder
        self.report = UpdateReport()
        self._reader: Reader | None = None

    # -- opening ----------------------------------------------------------------------------------------
    @classmethod
    def build(cls, sources: list[str | Path], index_dir: str | Path, config: Config | None = None,
              show_progress: bool = False) -> "Assistant":
        """Index every readable document under `sources` into `index_dir`, replacing what was there."""
        config = config or Config()
        embedder = Embedder(config.embedder, batch_size=config.embed_batch_size)
        vectors = embedder.encode([])
        empty = PassageIndex(embedder.fingerprint, IndexSettings(config.passage_words, config.passage_overlap_sentences),
                             {}, [], vectors, create_store(config.vector_store, vectors))
        assistant = cls(empty, index_dir, config, embedder)
        with lock_for(index_dir, config.lock_timeout_s):
            loaded = load_documents(sources, max_bytes=config.max_document_bytes)
            if not loaded.documents:
                reasons = "; ".join(f"{f.path}: {f.reason}" for f in loaded.failures) or "no supported files"
                raise DocumentError(f"nothing to index in {', '.join(map(str, sources))} ({reasons})")
            assistant._write(assistant._grown(empty, loaded.documents, show_progress), loaded.documents, [],
                             loaded.failures)
        return assistant

    @classmethod
    def load(cls, index_dir: str | Path, config: Config | None = None) -> "Assistant":
        """Open the index at `index_dir`; fails clearly if it is missing, damaged or from another model."""
        config = config or Config()
        embedder = Embedder(config.embedder, batch_size=config.embed_batch_size)
        return cls(load_index(index_dir, embedder.fingerprint), index_dir, config, embedder)

    @property
    def reader(self) -> Reader:
        if self._reader is None:
            self._reader = Reader(self.config.reader, max_length=self.config.reader_max_length,
                                  stride=self.config.reader_stride, max_answer_tokens=self.config.max_answer_tokens)
        return self._reader

    @property
    def default_threshold(self) -> float:
        """The abstention threshold `ask` uses when given none: the configured one, else the reader's calibrated one."""
        if self.config.abstain_threshold is not None:
            return float(self.config.abstain_threshold)
        return self.reader.threshold

    # -- documents --------------------------------------------------------------------------------------
    def documents(self) -> list[DocumentInfo]:
        counts: dict[str, int] = {}
        for p in self.index.passages:
            counts[p.doc_id] = counts.get(p.doc_id, 0) + 1
        return [DocumentInfo(d.id, d.title, d.source, len(d.text), counts.get(d.id, 0))
                for d in self.index.documents.values()]

    def document(self, doc_id: str) -> Document:
        try:
            return self.index.documents[doc_id]
        except KeyError:
            raise InputError(f"no document {doc_id!r} in the index") from None

    def add(self, sources: list[str | Path], show_progress: bool = False) -> UpdateReport:
        """Index the documents under `sources` without re-embedding the ones already indexed."""
        with lock_for(self.index_dir, self.config.lock_timeout_s):
            current = load_index(self.index_dir, self.embedder.fingerprint)
            loaded = load_documents(sources, known={d.id: d.sha256 for d in current.documents.values()},
                                    max_bytes=self.config.max_document_bytes)
            if loaded.documents:
                self._write(self._grown(current, loaded.documents, show_progress), loaded.documents, [],
                            loaded.failures)
            else:
                self.index, self.report = current, UpdateReport(skipped=loaded.failures)
        return self.report

    def remove(self, doc_id: str) -> UpdateReport:
        """Drop a document and its passages from the index."""
        with lock_for(self.index_dir, self.config.lock_timeout_s):
            current = load_index(self.index_dir, self.embedder.fingerprint)
            if doc_id not in current.documents:
                raise InputError(f"no document {doc_id!r} in the index")
            self._write(current.without(doc_id), [], [doc_id], [])
        return self.report

    def _grown(self, index: PassageIndex, documents: list[Document], show_progress: bool) -> PassageIndex:
        passages = [p for d in documents
                    for p in split_passages(d, index.settings.passage_words, index.settings.overlap_sentences)]
        vectors = self.embedder.encode([p.text for p in passages], show_progress=show_progress)
        return index.with_added(documents, passages, vectors)

    def _write(self, index: PassageIndex, added: list[Document], removed: list[str],
               skipped: list[LoadFailure]) -> None:
        save_index(index, self.index_dir)
        self.index = index
        infos = {info.id: info for info in self.documents()}
        self.report = UpdateReport([infos[d.id] for d in added], removed, skipped)

    # -- answering --------------------------------------------------------------------------------------
    def check_question(self, question: str) -> str:
        """The question, cleaned; raises QuestionError if it is empty, too long or has no words."""
        if not isinstance(question, str):
            raise QuestionError("the question must be text")
        question = " ".join(normalise(question).split())
        if not question:
            raise QuestionError("the question is empty")
        if len(question) > self.config.max_question_chars:
            raise QuestionError(f"the question is {len(question)} characters long; "
                                f"the limit is {self.config.max_question_chars}")
        if not _WORDS.search(question):
            raise QuestionError("the question has no words in it")
        return question

    @staticmethod
    def check_options(top_k: int | None, threshold: float | None = None) -> None:
        """Raise InputError unless `top_k` is a whole number of 1 or more and `threshold` a finite number."""
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise InputError(f"top_k must be a whole number of 1 or more, not {top_k!r}")
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                                      or not math.isfinite(threshold)):
            raise InputError(f"the threshold must be a finite number, not {threshold!r}")

    def retrieve(self, question: str, top_k: int | None = None, mode: str | None = None) -> list[Hit]:
        """The passages the reader will read for this question."""
        self.check_options(top_k)
        return self._retrieve(self.index, self.check_question(question), top_k, mode)

    def _retrieve(self, index: PassageIndex, question: str, top_k: int | None, mode: str | None) -> list[Hit]:
        return retrieve(index, self.embedder.encode_query(question), question, top_k or self.config.top_k,
                        mode or self.config.retriever, self.config.rrf_k)

    def ask(self, question: str, top_k: int | None = None, mode: str | None = None,
            threshold: float | None = None) -> Answer:
        """Answer from the documents with a cited span, or abstain saying why.

        The whole answer comes from one snapshot of the index, so a concurrent add or remove cannot mix in."""
        index = self.index
        question = self.check_question(question)
        self.check_options(top_k, threshold)
        hits = self._retrieve(index, question, top_k, mode)
        if threshold is None:
            threshold = self.default_threshold
        if not self._relevant(hits):
            return Answer(None, 0.0, True, "no passage in the documents is relevant to the question", passages=hits)
        candidates = self._group(index, self.reader.read(question, [h.passage for h in hits]))
        if not candidates or candidates[0].score < threshold:
            best = f"the best answer scored {candidates[0].score:.2f}" if candidates else "no answer span was found"
            return Answer(None, candidates[0].score if candidates else 0.0, True,
                          f"the documents do not seem to answer this: {best}, under the threshold {threshold:.2f}",
                          alternatives=candidates[:self.config.alternatives], passages=hits)
        best = candidates[0]
        return Answer(best.text, best.score, False, None, best.citations,
                      alternatives=candidates[1:1 + self.config.alternatives], passages=hits)

    def _relevant(self, hits: list[Hit]) -> bool:
        """Whether retrieval found anything: a lexical match or a close enough dense neighbour."""
        return any(h.lexical_rank is not None or (h.dense_score or 0.0) >= self.config.min_relevance for h in hits)

    @staticmethod
    def _group(index: PassageIndex, spans: list[Span]) -> list[Answer]:
        """One candidate answer per distinct answer text, keeping every place it was found as a citation."""
        groups: dict[str, list[Span]] = {}
        for span in spans:
            groups.setdefault(normalize_answer(span.text) or span.text, []).append(span)
        answers = [Answer(group[0].text, group[0].score, False, None, [_cite(index, s) for s in group])
                   for group in groups.values()]
        return sorted(answers, key=lambda a: -a.score)


def _cite(index: PassageIndex, span: Span) -> Citation:
    doc = index.documents[span.doc_id]
    s_start, s_end = sentence_around(doc.text, span.start, span.end)
    return Citation(doc.id, doc.title, span.start, span.end, span.text, doc.text[s_start:s_end], s_start,
                    doc.page_of(span.start))
