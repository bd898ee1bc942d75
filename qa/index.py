"""The passage index on disk: FAISS vectors, BM25, passages, documents and a self-describing manifest.

Layout: `<dir>` is a symbolic link to a complete version folder `.<name>.versions/<stamp>/` holding
`manifest.json`, `vectors.npy`, `passages.jsonl`, `documents.jsonl`, `bm25/` and the vector store
(`index.faiss`, or Qdrant's: see `qa.vector_store`).
A write builds a new version folder and then swaps the link with one atomic rename, under a file lock,
so a crash at any point leaves the previous index whole.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from qa.documents import Document
from qa.embedding import ModelFingerprint
from qa.errors import (IndexCorruptError, IndexLockedError, IndexMismatchError, IndexNotFoundError, InputError,
                       VectorStoreError)
from qa.lexical import LexicalIndex
from qa.passages import Passage
from qa.vector_store import VectorStore, create_store, discard_store, open_store

FORMAT_VERSION = 2


@dataclass
class IndexSettings:
    """How passages were cut: recorded so that an update cuts the same way."""

    passage_words: int
    overlap_sentences: int


class PassageIndex:
    """Documents, their passages, passage vectors and the two searchable indexes over them (vector store, BM25)."""

    def __init__(self, fingerprint: ModelFingerprint, settings: IndexSettings, documents: dict[str, Document],
                 passages: list[Passage], vectors: np.ndarray, store: VectorStore,
                 lexical: LexicalIndex | None = None):
        self.fingerprint = fingerprint
        self.settings = settings
        self.documents = documents
        self.passages = passages
        self.vectors = vectors
        self.store = store
        self.lexical = lexical or LexicalIndex([p.text for p in passages])

    # -- search -------------------------------------------------------------------------------------------
    def search_dense(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(passage position, cosine) pairs, best first."""
        k = min(k, len(self.passages))
        return self.store.search(query, k) if k else []

    def search_lexical(self, query: str, k: int) -> list[tuple[int, float]]:
        return self.lexical.search(query, k)

    # -- updates ------------------------------------------------------------------------------------------
    def with_added(self, documents: list[Document], passages: list[Passage], vectors: np.ndarray) -> "PassageIndex":
        """A new index with these documents added; the vector store grows, nothing is re-embedded."""
        all_vectors = np.concatenate([self.vectors, vectors]) if len(self.vectors) else vectors
        return PassageIndex(self.fingerprint, self.settings, {**self.documents, **{d.id: d for d in documents}},
                            self.passages + passages, all_vectors, self.store.with_added(vectors, all_vectors))

    def without(self, doc_id: str) -> "PassageIndex":
        """A new index without this document; vectors are reused, never recomputed."""
        keep = [i for i, p in enumerate(self.passages) if p.doc_id != doc_id]
        documents = {k: v for k, v in self.documents.items() if k != doc_id}
        vectors = self.vectors[keep]
        return PassageIndex(self.fingerprint, self.settings, documents, [self.passages[i] for i in keep], vectors,
                            create_store(self.store.spec, vectors))

    # -- persistence --------------------------------------------------------------------------------------
    def manifest(self, store_entry: dict) -> dict:
        per_doc: dict[str, int] = {}
        for p in self.passages:
            per_doc[p.doc_id] = per_doc.get(p.doc_id, 0) + 1
        return {
            "format_version": FORMAT_VERSION,
            "embedder": asdict(self.fingerprint),
            "vector_store": {**store_entry, "count": len(self.store)},
            "passages": {"words": self.settings.passage_words, "overlap_sentences": self.settings.overlap_sentences,
                         "count": len(self.passages)},
            "documents": {d.id: {"title": d.title, "source": d.source, "sha256": d.sha256, "chars": len(d.text),
                                 "passages": per_doc.get(d.id, 0)} for d in self.documents.values()},
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }

    def write_files(self, folder: Path) -> None:
        (folder / "bm25").mkdir(parents=True)
        np.save(folder / "vectors.npy", self.vectors)
        store_entry = self.store.save(folder)
        self.lexical.save(folder / "bm25")
        _write_jsonl(folder / "passages.jsonl", ({"doc_id": p.doc_id, "start": p.start, "end": p.end}
                                                 for p in self.passages))
        _write_jsonl(folder / "documents.jsonl", (asdict(d) for d in self.documents.values()))
        # The manifest goes last: a folder with a manifest is complete.
        (folder / "manifest.json").write_text(json.dumps(self.manifest(store_entry), indent=2), encoding="utf-8")


def _write_jsonl(path: Path, rows) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def read_manifest(folder: Path) -> dict:
    """The manifest of the index at `folder`; raises if there is none or it cannot be parsed."""
    path = Path(folder) / "manifest.json"
    if not Path(folder).exists():
        raise IndexNotFoundError(f"no index at {folder}; build one with `qa index SRC... --out {folder}`")
    if not Path(folder).is_dir():
        raise IndexNotFoundError(f"no index at {folder}: it is a file, not an index folder")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IndexCorruptError(f"index at {folder} has no manifest.json") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"manifest of {folder} is not valid JSON ({exc})") from exc


def check_compatible(manifest: dict, fingerprint: ModelFingerprint, folder: Path) -> None:
    """Raise IndexMismatchError unless the index has this format and was built with this embedding model."""
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexMismatchError(f"index at {folder} has format version {version}; this docqa reads version "
                                 f"{FORMAT_VERSION}. Rebuild it with `qa index`.")
    built = manifest.get("embedder", {})
    if built.get("dimension") != fingerprint.dimension or built.get("files_sha256") != fingerprint.files_sha256:
        raise IndexMismatchError(
            f"index at {folder} was built with embedding model {built.get('name')!r} "
            f"(dimension {built.get('dimension')}), not the configured {fingerprint.name!r} "
            f"(dimension {fingerprint.dimension}); rebuild the index or configure the model it was built with")


def load_index(folder: str | Path, fingerprint: ModelFingerprint) -> PassageIndex:
    """Load and validate the index at `folder`."""
    folder = current_version(Path(folder))
    manifest = read_manifest(folder)
    check_compatible(manifest, fingerprint, folder)
    try:
        rows = _read_jsonl(folder / "passages.jsonl")
        documents = {d["id"]: Document(**d) for d in _read_jsonl(folder / "documents.jsonl")}
        passages = [Passage(r["doc_id"], r["start"], r["end"], documents[r["doc_id"]].text[r["start"]:r["end"]])
                    for r in rows]
        vectors = np.load(folder / "vectors.npy", mmap_mode="r")  # read only when the index is updated
        store = open_store(manifest["vector_store"], folder)
        lexical = LexicalIndex.load(folder / "bm25", len(passages))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, json.JSONDecodeError) as exc:
        raise IndexCorruptError(f"index at {folder} is damaged ({type(exc).__name__}: {exc}); rebuild it") from exc
    expected = manifest["passages"]["count"]
    if not (len(passages) == len(vectors) == len(store) == expected):
        raise IndexCorruptError(f"index at {folder} is inconsistent: manifest says {expected} passages, found "
                                f"{len(passages)} passages, {len(vectors)} vectors, {len(store)} in the vector store")
    settings = IndexSettings(manifest["passages"]["words"], manifest["passages"]["overlap_sentences"])
    return PassageIndex(fingerprint, settings, documents, passages, vectors, store, lexical)


# -- atomic, locked writes --------------------------------------------------------------------------------
def _versions_dir(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.versions"


def current_version(folder: Path) -> Path:
    """`folder`, or, where a crash left nothing at its path while a copied index folder was being replaced by a
    link, that copied folder, kept among the versions as `*-adopted` (the link to the new one never came)."""
    if folder.exists() or folder.is_symlink() or not _versions_dir(folder).is_dir():
        return folder
    adopted = sorted(v for v in _versions_dir(folder).glob("*-adopted") if (v / "manifest.json").is_file())
    return adopted[-1] if adopted else folder


@contextmanager
def lock_for(folder: str | Path, timeout_s: float):
    """Hold the exclusive lock on writing the index at `folder`; raise IndexLockedError after `timeout_s`."""
    from filelock import FileLock, Timeout

    folder = Path(folder)
    path = folder.parent / f".{folder.name}.lock"
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError as exc:
        raise InputError(f"cannot write an index at {folder} ({exc.strerror or exc})") from exc
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=timeout_s)
    except Timeout as exc:
        raise IndexLockedError(f"another process is writing the index at {folder} "
                               f"(waited {timeout_s:.0f} s); try again when it is done") from exc
    try:
        yield
    finally:
        lock.release()


def save_index(index: PassageIndex, folder: str | Path) -> None:
    """Write `index` as a new version and swap it in atomically. The caller holds `lock_for(folder)`."""
    folder = Path(folder)
    versions = _versions_dir(folder)
    versions.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=versions))
    new.chmod(0o755)
    try:
        index.write_files(new)
        for path in new.rglob("*"):
            if path.is_file():
                with path.open("rb") as handle:
                    os.fsync(handle.fileno())
        if folder.exists() and not folder.is_symlink():  # a plain folder (e.g. copied): keep it as a version
            os.rename(folder, versions / f"{time.strftime('%Y%m%d-%H%M%S')}-adopted")
        link = folder.parent / f".{folder.name}.link-{os.getpid()}"
        if link.is_symlink():
            link.unlink()
        os.symlink(os.path.relpath(new, folder.parent), link)
        os.replace(link, folder)  # the atomic step
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    _remove_old_versions(folder)


def _remove_old_versions(folder: Path) -> None:
    """Delete every version folder except the current one, and links never swapped in (left by crashes)."""
    for link in folder.parent.glob(f".{folder.name}.link-*"):
        link.unlink()
    current = folder.resolve()
    for version in _versions_dir(folder).iterdir():
        if version.resolve() != current:
            try:
                discard_store(version)
            except VectorStoreError:  # an unreachable server keeps an orphan collection; the index is still whole
                pass
            shutil.rmtree(version, ignore_errors=True)
