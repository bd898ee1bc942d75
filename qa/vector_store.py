"""Vector stores: where passage vectors are searched, behind one small interface.

`faiss` (the default) keeps a FAISS index in the index folder, its type chosen by corpus size.
`qdrant` keeps a Qdrant collection: in the index folder (Qdrant's embedded local mode), or on a Qdrant
server or cluster with `qdrant:<url>` for corpora past one machine. Either way each index version has its
own store, so the atomic version swap of `qa.index` covers the vectors too.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import threading
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import numpy as np

from qa.errors import IndexCorruptError, IndexLockedError, InputError, VectorStoreError

ENGINES = ("faiss", "qdrant")
STORE_FILE = "vector_store.json"
EXACT_LIMIT = 50_000  # passages; exact search below, approximate search above
HNSW_EF_SEARCH = 128


class VectorStore(Protocol):
    """Nearest passages by cosine similarity of unit vectors; passage positions are the ids."""

    spec: str

    def __len__(self) -> int: ...

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(passage position, cosine) pairs, best first."""

    def with_added(self, vectors: np.ndarray, all_vectors: np.ndarray) -> "VectorStore":
        """A new store that also holds `vectors` (the last rows of `all_vectors`)."""

    def save(self, folder: Path) -> dict:
        """Write or upload the store for the index version in `folder`; returns its manifest entry."""

    def describe(self) -> str:
        """A few words for people: the engine and its index type."""


def parse_spec(spec: str) -> tuple[str, str | None]:
    """('faiss' | 'qdrant', server URL or None) from 'faiss', 'qdrant' or 'qdrant:<url>'."""
    engine, _, url = spec.partition(":")
    if engine not in ENGINES or (engine == "faiss" and url):
        raise InputError(f"vector store must be 'faiss', 'qdrant' or 'qdrant:<server url>', not {spec!r}")
    return engine, url or None


def create_store(spec: str, vectors: np.ndarray) -> VectorStore:
    """A new store of the engine named by `spec` holding `vectors`."""
    engine, url = parse_spec(spec)
    if engine == "faiss":
        return FaissStore.build(vectors)
    return QdrantStore(vectors, url)


def open_store(entry: dict, folder: Path) -> VectorStore:
    """The store of the index version in `folder`, as its manifest `entry` describes it."""
    if entry.get("engine") == "faiss":
        return FaissStore.open(folder, entry)
    if entry.get("engine") == "qdrant":
        return QdrantStore.open(folder, entry)
    raise IndexCorruptError(f"index at {folder} names an unknown vector store {entry.get('engine')!r}")


def discard_store(folder: Path) -> None:
    """Free what the store of a discarded index version holds outside its folder (a server collection)."""
    path = folder / STORE_FILE
    if path.is_file():
        entry = json.loads(path.read_text(encoding="utf-8"))
        if entry.get("engine") == "qdrant" and entry.get("url"):
            QdrantStore.drop(entry)


def _write_entry(folder: Path, entry: dict) -> dict:
    (folder / STORE_FILE).write_text(json.dumps(entry, indent=2), encoding="utf-8")
    return entry


# -- FAISS ------------------------------------------------------------------------------------------------
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
    if not index.is_trained:
        index.train(vectors)
    index.add(vectors)
    _tune(index, factory)
    return index


def _tune(index, factory: str) -> None:
    """Search-time settings, which FAISS does not store in its files."""
    import faiss

    if factory.startswith("HNSW"):
        faiss.downcast_index(index).hnsw.efSearch = HNSW_EF_SEARCH
    elif factory.startswith("IVF"):
        faiss.extract_index_ivf(index).nprobe = 32


class FaissStore:
    """A FAISS index in the index folder (`index.faiss`)."""

    spec = "faiss"

    def __init__(self, index, factory: str):
        self.index = index
        self.factory = factory

    @classmethod
    def build(cls, vectors: np.ndarray) -> "FaissStore":
        factory = choose_factory(len(vectors))
        return cls(build_faiss(vectors, factory), factory)

    @classmethod
    def open(cls, folder: Path, entry: dict) -> "FaissStore":
        import faiss

        index = faiss.read_index(str(folder / "index.faiss"))
        _tune(index, entry["factory"])
        return cls(index, entry["factory"])

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        scores, positions = self.index.search(query.reshape(1, -1).astype(np.float32), k)
        return [(int(p), float(s)) for p, s in zip(positions[0], scores[0]) if p >= 0]

    def with_added(self, vectors: np.ndarray, all_vectors: np.ndarray) -> "FaissStore":
        """The index grows in a copy, unless the corpus size now calls for another index type."""
        import faiss

        if choose_factory(len(all_vectors)) != self.factory or not len(self):
            return FaissStore.build(all_vectors)
        index = faiss.clone_index(self.index)
        index.add(vectors)
        _tune(index, self.factory)
        return FaissStore(index, self.factory)

    def save(self, folder: Path) -> dict:
        import faiss

        faiss.write_index(self.index, str(folder / "index.faiss"))
        return _write_entry(folder, {"engine": "faiss", "factory": self.factory, "metric": "inner_product"})

    def describe(self) -> str:
        return f"FAISS {self.factory}"


# -- Qdrant -----------------------------------------------------------------------------------------------
class QdrantStore:
    """A Qdrant collection: embedded (local mode, in the index folder) or on a server (`qdrant:<url>`).

    A new store holds its vectors until `save` uploads them into the collection of its index version."""

    LOCAL_COLLECTION = "passages"
    UPLOAD_BATCH = 1024

    def __init__(self, vectors: np.ndarray | None, url: str | None, client=None, collection: str | None = None):
        self.pending = vectors
        self.url = url
        self.client = client
        self.collection = collection
        self.spec = f"qdrant:{url}" if url else "qdrant"

    @staticmethod
    def _client(url: str | None, path: Path | None = None):
        """A client of the server at `url`, or of the embedded store at `path` (one per folder and process)."""
        from qdrant_client import QdrantClient

        if url:
            return QdrantClient(url=url, api_key=os.environ.get("QDRANT_API_KEY"))
        key = str(path.resolve())
        with _LOCAL_LOCK:
            client = _LOCAL_CLIENTS.get(key)
            if client is None:
                try:
                    client = _LOCAL_CLIENTS[key] = QdrantClient(path=key)
                except RuntimeError as exc:  # local mode allows one process per folder
                    raise IndexLockedError(f"the Qdrant store at {path} is open in another process; "
                                           "use a Qdrant server (`qdrant:<url>`) to share an index") from exc
        return client

    @classmethod
    def open(cls, folder: Path, entry: dict) -> "QdrantStore":
        url = entry.get("url")
        client = cls._client(url, folder / "qdrant")
        with _server_errors(url):
            exists = client.collection_exists(entry["collection"])
        if not exists:
            raise IndexCorruptError(f"index at {folder}: Qdrant collection {entry['collection']!r} is missing")
        return cls(None, url, client, entry["collection"])

    @classmethod
    def drop(cls, entry: dict) -> None:
        with _server_errors(entry["url"]):
            cls._client(entry["url"]).delete_collection(entry["collection"])

    def __len__(self) -> int:
        if self.pending is not None:
            return len(self.pending)
        return int(self.client.count(self.collection, exact=True).count)

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        if self.client is None:
            raise RuntimeError("a Qdrant store is searchable once saved")
        points = self.client.query_points(self.collection, query=np.asarray(query, dtype=np.float32).tolist(),
                                          limit=k).points
        return [(int(p.id), float(p.score)) for p in points]

    def with_added(self, vectors: np.ndarray, all_vectors: np.ndarray) -> "QdrantStore":
        return QdrantStore(all_vectors, self.url)

    def save(self, folder: Path) -> dict:
        from qdrant_client import models

        vectors = self.pending
        name = self.LOCAL_COLLECTION if not self.url else _collection_name(folder)
        entry = _write_entry(folder, {"engine": "qdrant", "url": self.url, "collection": name,
                                      "distance": "cosine"})
        client = self._client(self.url, folder / "qdrant")
        with _server_errors(self.url):
            client.create_collection(name, vectors_config=models.VectorParams(size=vectors.shape[1],
                                                                              distance=models.Distance.COSINE))
            for start in range(0, len(vectors), self.UPLOAD_BATCH):
                batch = vectors[start:start + self.UPLOAD_BATCH]
                client.upsert(name, points=models.Batch(ids=list(range(start, start + len(batch))),
                                                        vectors=batch.tolist()), wait=True)
        self.client, self.collection, self.pending = client, name, None
        return entry

    def describe(self) -> str:
        return f"Qdrant at {self.url}" if self.url else "Qdrant (embedded)"


@contextmanager
def _server_errors(url: str | None):
    """Turn a Qdrant server's connection and response errors into one clear VectorStoreError."""
    from qdrant_client.http.exceptions import ApiException

    try:
        yield
    except (ApiException, OSError) as exc:
        if not url:
            raise
        raise VectorStoreError(f"the Qdrant server at {url} failed: {exc}") from exc


_LOCAL_CLIENTS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_LOCAL_LOCK = threading.Lock()


@atexit.register
def _close_local_clients() -> None:
    """Close embedded stores before the interpreter tears down the modules their finalisers need."""
    for client in list(_LOCAL_CLIENTS.values()):
        client.close()


def _collection_name(folder: Path) -> str:
    """A server collection per index version: `docqa-<index name>-<version>`."""
    index_name = folder.parent.name.removeprefix(".").removesuffix(".versions")
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"docqa-{index_name}-{folder.name}")
