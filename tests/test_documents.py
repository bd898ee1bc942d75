"""Loading each input format into normalised Documents, and reporting what cannot be read."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.documents import load_document, load_documents, normalise
from qa.errors import DocumentError

from helpers import make_pdf


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def test_txt_title_is_first_non_empty_line_and_id_is_stem(tmp_path):
    doc = load_document(write(tmp_path / "report_7.txt", "\n\n  Quarterly report \nThe mill made 40 tonnes.\n"))
    assert doc.id == "report_7"
    assert doc.title == "Quarterly report"
    assert "The mill made 40 tonnes." in doc.text


def test_markdown_heading_marks_are_not_in_the_title(tmp_path):
    doc = load_document(write(tmp_path / "notes.md", "# Harbour notes\n\nThe ferry leaves at noon.\n"))
    assert doc.title == "Harbour notes"


def test_html_main_text_is_extracted_without_scripts(tmp_path):
    html = """<html><head><title>Bridge opens</title><script>var secret = "do not index";</script></head>
    <body><nav>Home | About</nav><article><h1>Bridge opens</h1>
    <p>The new bridge over the Tamar river opened on Friday after four years of construction work by the county.</p>
    <p>Engineers said the span is 310 metres long and carries two lanes of traffic and a cycle path.</p>
    </article></body></html>"""
    doc = load_document(write(tmp_path / "bridge.html", html))
    assert "310 metres" in doc.text
    assert "do not index" not in doc.text
    assert doc.title == "Bridge opens"


def test_pdf_text_and_page_numbers(tmp_path):
    doc = load_document(make_pdf(tmp_path / "two.pdf", ["The orchard grows pears.", "The barn holds hay."]))
    offset = doc.text.index("barn")
    assert doc.page_of(doc.text.index("orchard")) == 1
    assert doc.page_of(offset) == 2


def test_pdf_without_text_layer_is_reported(tmp_path):
    with pytest.raises(DocumentError, match="no text layer"):
        load_document(make_pdf(tmp_path / "blank.pdf", [""]))


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_non_utf8_text_is_decoded(tmp_path, encoding):
    doc = load_document(write(tmp_path / "cafe.txt", "Café menu\nCrème brûlée costs 7 €uros.".encode(encoding)
                              if encoding == "utf-16" else "Café menu\nCrème brûlée costs 7 euros.".encode(encoding)))
    assert doc.title == "Café menu"
    assert "Crème brûlée" in doc.text


@pytest.mark.parametrize("content, reason", [(b"", "no text"), (b"   \n\n", "no text"),
                                             (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20, "binary")])
def test_unusable_files_are_errors(tmp_path, content, reason):
    with pytest.raises(DocumentError, match=reason):
        load_document(write(tmp_path / "bad.txt", content))


def test_batch_reports_bad_files_by_name_and_loads_the_rest(tmp_path):
    write(tmp_path / "a_good.txt", "Good file\nIt has text.")
    write(tmp_path / "b_copy.txt", "Good file\nIt has text.")
    write(tmp_path / "empty.txt", "")
    write(tmp_path / "image.txt", b"\x00\x01\x02\x03" * 100)
    result = load_documents([tmp_path, tmp_path / "missing.txt"])
    assert [d.id for d in result.documents] == ["a_good"]
    failed = {Path(f.path).name: f.reason for f in result.failures}
    assert set(failed) == {"b_copy.txt", "empty.txt", "image.txt", "missing.txt"}
    assert failed["b_copy.txt"] == "same content as document 'a_good'"
    assert "binary" in failed["image.txt"]
    assert "cannot read" in failed["missing.txt"]


def test_normalise_is_idempotent_and_unifies_newlines():
    text = "Cafe\u0301\r\nline two\rline three\x07  \n"
    once = normalise(text)
    assert once == "Café\nline two\nline three"
    assert normalise(once) == once
