"""The passage index on disk: FAISS vectors, BM25, passages, documents and a self-describing manifest.

Layout: `<dir>` is a symbolic link to a complete version folder `.<name>.versions/<stamp>/` holding
`manifest.json`, `index.faiss`, `vectors.npy`, `passages.jsonl`, `documents.jsonl` and `bm25/`.
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
from qa.errors import IndexCorruptError, IndexLockedError, IndexMismatchError, IndexNotFoundError
from qa.lexical import LexicalIndex
from qa.passages import Passage

FORMAT_VERSION = 1
EXACT_LIMIT = 50_000  # passages; exact search below, approximate search above


def choose_factory(n_passages: int) -> str:
    """The FAISS factory string for a corpus of this size: exact, then HNSW, then IVF for the largest."""
    if n_passages < EXACT_LIMIT:
        return "Flat"
    if n_passages < 5_000_000:
        return "HNSW32"
    return f"IVF{int(4 * np.sqrt(n_passages))},Flat"


def build_faiss(vectors: np.ndarray, factory: str):
    """A FAISS inner-product index of `factory` type holding `vectors` (unit vectors: cosine similarity)."""
    import faiss

    index = faiss.index_factory(vectors.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
    if factory.startswith("HNSW"):
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 128
    if not index.is_trained:
        index.train(vectors)
    if factory.startswith("IVF"):
        index.nprobe = 32
    index.add(vectors)
    return index


@dataclass
class IndexSettings:
    """How passages were cut and vectors indexed: recorded so that an update cuts the same way."""

    passage_words: int
    overlap_sentences: int
    factory: str = ""


class PassageIndex:
    """Documents, their passages, passage vectors and the two searchable indexes over them, in memory."""

    def __init__(self, fingerprint: ModelFingerprint, settings: IndexSettings, documents: dict[str, Document],
                 passages: list[Passage], vectors: np.ndarray, faiss_index=None, lexical: LexicalIndex | None = None):
        self.fingerprint = fingerprint
        self.settings = settings
        self.documents = documents
        self.passages = passages
        self.vectors = vectors
        if faiss_index is None:
            settings.factory = choose_factory(len(passages))
            faiss_index = build_faiss(vectors, settings.factory)
        self.faiss = faiss_index
        self.lexical = lexical or LexicalIndex([p.text for p in passages])

    # -- search -------------------------------------------------------------------------------------------
    def search_dense(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(passage position, cosine) pairs, best first."""
        k = min(k, len(self.passages))
        if k == 0:
            return []
        scores, positions = self.faiss.search(query.reshape(1, -1).astype(np.float32), k)
        return [(int(p), float(s)) for p, s in zip(positions[0], scores[0]) if p >= 0]

    def search_lexical(self, query: str, k: int) -> list[tuple[int, float]]:
        return self.lexical.search(query, k)

    # -- updates ------------------------------------------------------------------------------------------
    def with_added(self, documents: list[Document], passages: list[Passage], vectors: np.ndarray) -> "PassageIndex":
        """A new index with these documents added; the FAISS index grows in place unless its type must change."""
        all_passages = self.passages + passages
        all_vectors = np.concatenate([self.vectors, vectors]) if len(self.vectors) else vectors
        settings = IndexSettings(self.settings.passage_words, self.settings.overlap_sentences, self.settings.factory)
        faiss_index = None
        if choose_factory(len(all_passages)) == settings.factory and len(self.passages):
            import faiss

            faiss_index = faiss.clone_index(self.faiss)
            faiss_index.add(vectors)
        return PassageIndex(self.fingerprint, settings, {**self.documents, **{d.id: d for d in documents}},
                            all_passages, all_vectors, faiss_index)

    def without(self, doc_id: str) -> "PassageIndex":
        """A new index without this document; vectors are reused, never recomputed."""
        keep = [i for i, p in enumerate(self.passages) if p.doc_id != doc_id]
        documents = {k: v for k, v in self.documents.items() if k != doc_id}
        settings = IndexSettings(self.settings.passage_words, self.settings.overlap_sentences)
        return PassageIndex(self.fingerprint, settings, documents, [self.passages[i] for i in keep],
                            self.vectors[keep])

    # -- persistence --------------------------------------------------------------------------------------
    def manifest(self) -> dict:
        per_doc: dict[str, int] = {}
        for p in self.passages:
            per_doc[p.doc_id] = per_doc.get(p.doc_id, 0) + 1
        return {
            "format_version": FORMAT_VERSION,
            "embedder": asdict(self.fingerprint),
            "faiss": {"factory": self.settings.factory, "metric": "inner_product", "ntotal": int(self.faiss.ntotal)},
            "passages": {"words": self.settings.passage_words, "overlap_sentences": self.settings.overlap_sentences,
                         "count": len(self.passages)},
            "documents": {d.id: {"title": d.title, "source": d.source, "sha256": d.sha256, "chars": len(d.text),
                                 "passages": per_doc.get(d.id, 0)} for d in self.documents.values()},
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }

    def write_files(self, folder: Path) -> None:
        import faiss

        (folder / "bm25").mkdir(parents=True)
        np.save(folder / "vectors.npy", self.vectors)
        faiss.write_index(self.faiss, str(folder / "index.faiss"))
        self.lexical.save(folder / "bm25")
        _write_jsonl(folder / "passages.jsonl", ({"doc_id": p.doc_id, "start": p.start, "end": p.end}
                                                 for p in self.passages))
        _write_jsonl(folder / "documents.jsonl", (asdict(d) for d in self.documents.values()))
        # The manifest goes last: a folder with a manifest is complete.
        (folder / "manifest.json").write_text(json.dumps(self.manifest(), indent=2), encoding="utf-8")


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
    import faiss

    folder = Path(folder)
    manifest = read_manifest(folder)
    check_compatible(manifest, fingerprint, folder)
    try:
        rows = _read_jsonl(folder / "passages.jsonl")
        documents = {d["id"]: Document(**d) for d in _read_jsonl(folder / "documents.jsonl")}
        passages = [Passage(r["doc_id"], r["start"], r["end"], documents[r["doc_id"]].text[r["start"]:r["end"]])
                    for r in rows]
        vectors = np.load(folder / "vectors.npy")
        faiss_index = faiss.read_index(str(folder / "index.faiss"))
        lexical = LexicalIndex.load(folder / "bm25", len(passages))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, json.JSONDecodeError) as exc:
        raise IndexCorruptError(f"index at {folder} is damaged ({type(exc).__name__}: {exc}); rebuild it") from exc
    expected = manifest["passages"]["count"]
    if not (len(passages) == len(vectors) == faiss_index.ntotal == expected):
        raise IndexCorruptError(f"index at {folder} is inconsistent: manifest says {expected} passages, found "
                                f"{len(passages)} passages, {len(vectors)} vectors, {faiss_index.ntotal} in FAISS")
    settings = IndexSettings(manifest["passages"]["words"], manifest["passages"]["overlap_sentences"],
                             manifest["faiss"]["factory"])
    if settings.factory.startswith("HNSW"):
        faiss.downcast_index(faiss_index).hnsw.efSearch = 128
    return PassageIndex(fingerprint, settings, documents, passages, vectors, faiss_index, lexical)


# -- atomic, locked writes --------------------------------------------------------------------------------
def _versions_dir(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.versions"


@contextmanager
def lock_for(folder: str | Path, timeout_s: float):
    """Hold the exclusive lock on writing the index at `folder`; raise IndexLockedError after `timeout_s`."""
    from filelock import FileLock, Timeout

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder.parent / f".{folder.name}.lock"))
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
    """Delete every version folder except the current one (left over from earlier writes or crashes)."""
    current = folder.resolve()
    for version in _versions_dir(folder).iterdir():
        if version.resolve() != current:
            shutil.rmtree(version, ignore_errors=True)
