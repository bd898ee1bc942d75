"""Uploaded files: check type and size, store them under a safe name inside the app's upload folder."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from qa.documents import MAX_DOCUMENT_BYTES, SUFFIXES, LoadFailure

ALLOWED_SUFFIXES = SUFFIXES  # what qa.documents can read
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """A base name that cannot leave its folder: no directories, no leading dots, only [A-Za-z0-9._-]."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = _UNSAFE.sub("_", base).strip("._-")
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = stem.strip("._-")[:100] or "document"
    return f"{stem}.{suffix.lower()}" if suffix else stem


@dataclass
class StoredUploads:
    paths: list[Path] = field(default_factory=list)
    skipped: list[LoadFailure] = field(default_factory=list)


def store_uploads(files: list[str | Path], folder: Path, max_bytes: int = MAX_DOCUMENT_BYTES,
                  taken: set[str] = frozenset()) -> StoredUploads:
    """Copy acceptable files into `folder` under their sanitised base names; report the others and why.

    `taken` holds the document ids already indexed: a file whose name would give one of them is skipped
    before it overwrites anything (a document's id is its file name without the suffix)."""
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    result = StoredUploads()
    for file in files:
        source = Path(file)
        name = safe_name(source.name)
        shown = source.name or str(file)
        suffix = Path(name).suffix.lower()
        if suffix not in ALLOWED_SUFFIXES:
            result.skipped.append(LoadFailure(shown, f"unsupported file type {suffix or '(none)'}; "
                                                     f"use one of {', '.join(ALLOWED_SUFFIXES)}"))
            continue
        try:
            size = source.stat().st_size
        except OSError as exc:
            result.skipped.append(LoadFailure(shown, f"cannot read the upload ({exc.strerror or exc})"))
            continue
        if size > max_bytes:
            result.skipped.append(LoadFailure(shown, f"file is {size / 2**20:.1f} MiB, over the "
                                                     f"{max_bytes / 2**20:.0f} MiB limit"))
            continue
        if Path(name).stem in taken:
            result.skipped.append(LoadFailure(shown, f"a document with id {Path(name).stem!r} is already indexed; "
                                                     "remove it first or rename the file"))
            continue
        target = (root / name).resolve()
        if target.parent != root:  # cannot happen with safe_name; kept as the last line of defence
            result.skipped.append(LoadFailure(shown, "unsafe file name"))
            continue
        shutil.copyfile(source, target)
        result.paths.append(target)
    return result
