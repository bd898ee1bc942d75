"""Load files into Documents: decode, extract text, normalise once. Offsets everywhere refer to `Document.text`.

Text files are read in chunks: decoded incrementally and normalised chunk by chunk, so reading takes about
twice the text's size in memory, never a copy of the file's bytes beside it. Files over `MAX_DOCUMENT_BYTES`
are refused by their size on disk before anything is read.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import stat
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import DocumentError

SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf")
# Embedding 50 MiB of text (~70k passages) takes about 8 minutes on 2 CPU cores; 200 MiB would take half an hour.
MAX_DOCUMENT_BYTES = 50 * 2**20
CHUNK_BYTES = 2**20
_HEAD_BYTES = 8192  # where a BOM or binary data shows
_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
_NOT_TEXT = "not valid text in UTF-8, UTF-16 or Windows-1252"
# Control characters and lone surrogates (which no encoder accepts) become spaces.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_LINE = re.compile(r"[^\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+")  # the lines of str.splitlines, lazily


@dataclass(frozen=True)
class Document:
    """A document's normalised text and where it came from. `meta["page_starts"]` maps PDF pages to offsets."""

    id: str
    title: str
    text: str
    source: str
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def sha256(self) -> str:
        """The hash of the UTF-8 text, encoded a slice at a time."""
        digest = hashlib.sha256()
        for start in range(0, len(self.text), CHUNK_BYTES):
            digest.update(self.text[start:start + CHUNK_BYTES].encode("utf-8"))
        return digest.hexdigest()

    def page_of(self, offset: int) -> int | None:
        """The 1-based PDF page holding `offset`, or None for documents without pages."""
        starts = self.meta.get("page_starts")
        if not starts:
            return None
        return sum(1 for start in starts if start <= offset)


@dataclass(frozen=True)
class LoadFailure:
    """A file that could not be loaded, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class LoadResult:
    documents: list[Document]
    failures: list[LoadFailure]


def _normalise_part(text: str) -> str:
    return _CONTROL.sub(" ", unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n"))


def normalise(text: str) -> str:
    """Unicode NFC, Unix newlines, no control characters or lone surrogates, no trailing blank space."""
    return _normalise_part(text).rstrip()


def _safe_cut(text: str) -> int:
    """Where `text` may be cut so that normalising the two parts gives the normalised whole: after its last
    newline, else before its last space (neither composes with a neighbour nor splits a "\\r\\n"); 0: nowhere."""
    newline = text.rfind("\n")
    return newline + 1 if newline >= 0 else max(text.rfind(" "), 0)


def _normalised_parts(chunks: Iterable[str]) -> Iterator[str]:
    """`chunks` normalised, each cut where normalising cannot reach across the cut."""
    pending: list[str] = []
    for chunk in chunks:
        cut = _safe_cut(chunk)
        if cut:
            yield _normalise_part("".join(pending) + chunk[:cut])
            pending = []
        pending.append(chunk[cut:])
    yield _normalise_part("".join(pending))


def _normalised_text(chunks: Iterable[str]) -> str:
    """normalise("".join(chunks)), without holding the whole text twice before the final join."""
    parts = [part for part in _normalised_parts(chunks) if part]
    while parts and parts[-1].isspace():
        parts.pop()
    if parts:
        parts[-1] = parts[-1].rstrip()
    return "".join(parts)


def _encodings(head: bytes) -> tuple[str, ...]:
    """The encodings to try, from the file's first bytes. Raises DocumentError for binary data."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return (encoding,)
    if b"\x00" in head:
        raise DocumentError("binary data, not text")
    return "utf-8", "cp1252"


def _decoded(handle, encoding: str, chunk_bytes: int) -> Iterator[str]:
    """The rest of `handle` decoded a chunk at a time; raises UnicodeDecodeError where it is not `encoding`."""
    decoder = codecs.getincrementaldecoder(encoding)("replace" if encoding == "cp1252" else "strict")
    while block := handle.read(chunk_bytes):
        yield decoder.decode(block)
    yield decoder.decode(b"", final=True)


def _mostly_valid(chunks: Iterable[str]) -> Iterator[str]:
    """`chunks`, raising DocumentError at the end if over 1 % of the characters were undecodable."""
    replaced = total = 0
    for chunk in chunks:
        replaced, total = replaced + chunk.count("\ufffd"), total + len(chunk)
        yield chunk
    if replaced > total / 100:
        raise DocumentError(_NOT_TEXT)


def _decode_file(path: Path, assemble: Callable[[Iterable[str]], str], chunk_bytes: int) -> tuple[str, str]:
    """(assemble(decoded chunks), encoding): UTF-8 or UTF-16 by BOM, else UTF-8, else Windows-1252."""
    with path.open("rb") as handle:
        for encoding in _encodings(handle.read(_HEAD_BYTES)):
            handle.seek(0)
            chunks = _decoded(handle, encoding, chunk_bytes)
            try:
                return assemble(_mostly_valid(chunks) if encoding == "cp1252" else chunks), encoding
            except UnicodeDecodeError:
                continue
    raise DocumentError(_NOT_TEXT)


def read_text(path: str | Path, chunk_bytes: int = CHUNK_BYTES) -> tuple[str, str]:
    """A text file's normalised text and its encoding, read, decoded and normalised `chunk_bytes` at a time."""
    return _decode_file(Path(path), _normalised_text, chunk_bytes)


def title_of(text: str, fallback: str) -> str:
    """The first non-empty line, without Markdown heading marks, at most 200 characters."""
    for match in _LINE.finditer(text):
        line = match.group().strip().lstrip("#").strip()
        if line:
            return line[:200]
    return fallback


def _read_text(path: Path) -> tuple[str, dict]:
    text, encoding = read_text(path)
    return text, {"encoding": encoding}


def _read_html(path: Path) -> tuple[str, dict]:
    import trafilatura

    html, encoding = _decode_file(path, "".join, CHUNK_BYTES)
    try:
        text = trafilatura.extract(html, include_comments=False, include_tables=True, favor_recall=True) or ""
        metadata = trafilatura.extract_metadata(html)
    except Exception as exc:  # noqa: BLE001 - a parser of untrusted input; one bad file must not stop a batch
        raise DocumentError(f"unreadable HTML ({type(exc).__name__}: {exc})") from exc
    meta = {"encoding": encoding}
    if metadata is not None and metadata.title:
        meta["title"] = metadata.title
    return normalise(text), meta


def _read_pdf(path: Path) -> tuple[str, dict]:
    from pypdf import PdfReader

    try:
        pages = [normalise(page.extract_text() or "") for page in PdfReader(path).pages]
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds of error on malformed files
        raise DocumentError(f"unreadable PDF ({type(exc).__name__}: {exc})") from exc
    text, starts = "", []
    for page in pages:
        starts.append(len(text))
        text += page + "\n\n"
    text = text.rstrip()
    if not text:
        raise DocumentError("PDF has no text layer (scanned images need OCR first)")
    return text, {"page_starts": [min(start, len(text)) for start in starts]}


_READERS = {".txt": _read_text, ".md": _read_text, ".html": _read_html, ".htm": _read_html, ".pdf": _read_pdf}


def _check_size(path: Path, max_bytes: int) -> None:
    """Raise DocumentError unless `path` is a regular file of at most `max_bytes` (read from its size on disk)."""
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise DocumentError("not a regular file")
    if info.st_size > max_bytes:
        raise DocumentError(f"{path.name} is {info.st_size / 2**20:.1f} MiB, over the {max_bytes / 2**20:g} MiB "
                            f"limit for one document; split it into smaller files")


def load_document(path: str | Path, doc_id: str | None = None, max_bytes: int = MAX_DOCUMENT_BYTES) -> Document:
    """Read one file into a Document. Raises DocumentError saying what is wrong with it."""
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DocumentError(f"unsupported file type {path.suffix or '(none)'}; use one of {', '.join(SUFFIXES)}")
    try:
        _check_size(path, max_bytes)
        text, meta = reader(path)
    except OSError as exc:
        raise DocumentError(f"cannot read file ({exc.strerror or exc})") from exc
    if not text:
        raise DocumentError("document holds no text")
    title = meta.pop("title", None) or title_of(text, path.stem)
    return Document(id=doc_id or path.stem, title=title, text=text, source=str(path), meta=meta)


def expand(sources: list[str | Path]) -> list[Path]:
    """Files named directly, and the supported files inside named folders, sorted."""
    files: list[Path] = []
    for source in map(Path, sources):
        if source.is_dir():
            files.extend(sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES))
        else:
            files.append(source)
    return files


def load_documents(sources: list[str | Path], known: dict[str, str] | None = None,
                   max_bytes: int = MAX_DOCUMENT_BYTES) -> LoadResult:
    """Load every file under `sources`; report the unreadable ones and duplicates by name instead of failing.

    A file that vanishes between the listing and its reading is reported like any other unreadable file.
    `known` maps document ids already indexed to their content hashes, so that re-adding is caught too.
    """
    ids = dict(known or {})
    hashes = {digest: doc_id for doc_id, digest in ids.items()}
    documents, failures = [], []
    for path in expand(sources):
        try:
            doc = load_document(path, max_bytes=max_bytes)
        except DocumentError as exc:
            failures.append(LoadFailure(str(path), str(exc)))
            continue
        digest = doc.sha256
        if doc.id in ids:
            failures.append(LoadFailure(str(path), f"a document with id {doc.id!r} is already indexed"))
        elif digest in hashes:
            failures.append(LoadFailure(str(path), f"same content as document {hashes[digest]!r}"))
        else:
            ids[doc.id], hashes[digest] = digest, doc.id
            documents.append(doc)
    return LoadResult(documents, failures)
