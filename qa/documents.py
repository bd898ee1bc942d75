"""Load files into Documents: decode, extract text, normalise once. Offsets everywhere refer to `Document.text`."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import DocumentError

SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf")
MAX_DOCUMENT_BYTES = 512 * 1024 * 1024
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


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
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

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


def normalise(text: str) -> str:
    """Unicode NFC, Unix newlines, no control characters, no trailing blank space."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub(" ", text).rstrip()


def decode(data: bytes) -> tuple[str, str]:
    """Decode bytes to text, returning (text, encoding). Raises DocumentError for binary data."""
    for bom, encoding in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            return data.decode(encoding), encoding
    if b"\x00" in data[:8192]:
        raise DocumentError("binary data, not text")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    text = data.decode("cp1252", errors="replace")
    if text.count("\ufffd") > len(text) / 100:
        raise DocumentError("not valid text in UTF-8, UTF-16 or Windows-1252")
    return text, "cp1252"


def title_of(text: str, fallback: str) -> str:
    """The first non-empty line, without Markdown heading marks, at most 200 characters."""
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:200]
    return fallback


def _read_text(path: Path) -> tuple[str, dict]:
    text, encoding = decode(path.read_bytes())
    return text, {"encoding": encoding}


def _read_html(path: Path) -> tuple[str, dict]:
    import trafilatura

    html, encoding = decode(path.read_bytes())
    text = trafilatura.extract(html, include_comments=False, include_tables=True, favor_recall=True) or ""
    meta = {"encoding": encoding}
    metadata = trafilatura.extract_metadata(html)
    if metadata is not None and metadata.title:
        meta["title"] = metadata.title
    return text, meta


def _read_pdf(path: Path) -> tuple[str, dict]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        pages = [normalise(page.extract_text() or "") for page in PdfReader(path).pages]
    except (PdfReadError, ValueError, KeyError) as exc:
        raise DocumentError(f"unreadable PDF ({exc})") from exc
    text, starts = "", []
    for page in pages:
        starts.append(len(text))
        text += page + "\n\n"
    if not text.strip():
        raise DocumentError("PDF has no text layer (scanned images need OCR first)")
    return text, {"page_starts": starts}


_READERS = {".txt": _read_text, ".md": _read_text, ".html": _read_html, ".htm": _read_html, ".pdf": _read_pdf}


def load_document(path: str | Path, doc_id: str | None = None) -> Document:
    """Read one file into a Document. Raises DocumentError saying what is wrong with it."""
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DocumentError(f"unsupported file type {path.suffix or '(none)'}; use one of {', '.join(SUFFIXES)}")
    try:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise DocumentError(f"file is {size / 2**20:.0f} MiB, over the {MAX_DOCUMENT_BYTES // 2**20} MiB limit")
        raw, meta = reader(path)
    except OSError as exc:
        raise DocumentError(f"cannot read file ({exc.strerror or exc})") from exc
    text = normalise(raw)
    if not text.strip():
        raise DocumentError("document holds no text")
    if "page_starts" in meta:
        meta["page_starts"] = [min(start, len(text)) for start in meta["page_starts"]]
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


def load_documents(sources: list[str | Path], known: dict[str, str] | None = None) -> LoadResult:
    """Load every file under `sources`; report the unreadable ones and duplicates by name instead of failing.

    `known` maps document ids already indexed to their content hashes, so that re-adding is caught too.
    """
    ids = dict(known or {})
    hashes = {digest: doc_id for doc_id, digest in ids.items()}
    documents, failures = [], []
    for path in expand(sources):
        try:
            doc = load_document(path)
        except DocumentError as exc:
            failures.append(LoadFailure(str(path), str(exc)))
            continue
        if doc.id in ids:
            failures.append(LoadFailure(str(path), f"a document with id {doc.id!r} is already indexed"))
        elif doc.sha256 in hashes:
            failures.append(LoadFailure(str(path), f"same content as document {hashes[doc.sha256]!r}"))
        else:
            ids[doc.id], hashes[doc.sha256] = doc.sha256, doc.id
            documents.append(doc)
    return LoadResult(documents, failures)
