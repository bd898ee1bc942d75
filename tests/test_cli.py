"""The `qa` command: JSON output, exit codes, no tracebacks for the user's mistakes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SEEDS


def qa(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qa.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory) -> Path:
    """The seed index built through the CLI, with the default (shipped) models."""
    out = tmp_path_factory.mktemp("cli") / "seeds"
    result = qa("index", str(SEEDS), "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "indexed 5 documents" in result.stdout
    return out


def test_ask_json_citations_reproduce_the_document_text(cli_index):
    result = qa("ask", "--index", str(cli_index), "--json", "Where is the CSTO headquartered?")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert set(answer) >= {"answer", "score", "abstained", "reason", "citations"}
    assert isinstance(answer["abstained"], bool) and isinstance(answer["score"], float)
    assert answer["abstained"] or answer["citations"]
    for citation in answer["citations"]:
        assert set(citation) >= {"doc_id", "title", "start", "end", "text", "sentence"}
        text = (SEEDS / f"{citation['doc_id']}.txt").read_text(encoding="utf-8")
        assert text[citation["start"]:citation["end"]] == citation["text"]
        assert citation["text"] in citation["sentence"]
    if not answer["abstained"]:
        assert answer["answer"] == answer["citations"][0]["text"]


def test_ask_prints_a_readable_answer(cli_index):
    result = qa("ask", "--index", str(cli_index), "Who is the Secretary General of the CSTO?")
    assert result.returncode == 0, result.stderr
    assert "confidence" in result.stdout or "No answer in the documents" in result.stdout


@pytest.mark.parametrize("args, code, message", [
    (["ask", "--index", "{tmp}/missing", "Anything?"], 1, "no index at"),
    (["ask", "--index", "{index}", "   "], 2, "the question is empty"),
    (["index", "{tmp}/no-such-folder", "--out", "{tmp}/x"], 2, "nothing to index"),
    (["remove", "--index", "{index}", "no-such-doc"], 2, "no document 'no-such-doc'"),
    (["ask", "--index", "{index}", "--reader", "{tmp}/no-reader", "Who?"], 1, "not found"),
    (["ask"], 2, "required"),
])
def test_user_mistakes_are_one_line_errors_with_exit_codes(cli_index, tmp_path, args, code, message):
    args = [a.format(tmp=tmp_path, index=cli_index) for a in args]
    result = qa(*args)
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_index_reports_skipped_files_and_indexes_the_rest(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text("# Tides\n\nHigh tide at the harbour is at 6 pm.")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    result = qa("index", str(docs), "--out", str(tmp_path / "idx"), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "skipped" in result.stderr and "broken.pdf" in result.stderr
    assert "indexed 1 documents" in result.stdout


def test_train_reader_help_documents_the_recipe():
    result = qa("train-reader", "--help")
    assert result.returncode == 0
    for word in ("SQuAD-2", "--curve", "--negatives", "threshold", "dev"):
        assert word in result.stdout
