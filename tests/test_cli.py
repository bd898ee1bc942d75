"""The `qa` command: JSON output, exit codes, no tracebacks for the user's mistakes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import SEEDS
from helpers import qa


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
    (["ask", "--index", "{index}", "--top-k", "0", "Who?"], 2, "--top-k: must be a whole number of 1 or more"),
    (["ask", "--index", "{index}", "--threshold", "nan", "Who?"], 2, "--threshold: must be a number, not 'nan'"),
    (["ask", "--index", "{index}/manifest.json", "Who?"], 1, "it is a file, not an index folder"),
    (["index", str(SEEDS), "--out", "{index}/manifest.json/x"], 2, "cannot write an index at"),
    (["ask", "--index", "{index}", "--embedder", "{tmp}/no-embedder", "Who?"], 1, "not found"),
])
def test_user_mistakes_are_one_line_errors_with_exit_codes(cli_index, tmp_path, args, code, message):
    args = [a.format(tmp=tmp_path, index=cli_index) for a in args]
    result = qa(*args)
    assert result.returncode == code
    assert message in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr


def test_train_reader_help_documents_the_recipe():
    result = qa("train-reader", "--help")
    assert result.returncode == 0
    for word in ("SQuAD-2", "--curve", "--negatives", "threshold", "dev"):
        assert word in result.stdout


def test_max_document_mb_skips_larger_files_by_name(cli_index, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "big.txt").write_text("Lighthouses guide ships at night.\n" * 40_000)  # 1.3 MiB
    (tmp_path / "docs" / "small.txt").write_text("Ferries\nThe ferry leaves at noon.")
    result = qa("add", str(tmp_path / "docs"), "--index", str(cli_index), "--max-document-mb", "1", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "added small" in result.stdout
    assert "big.txt" in result.stderr and "1 MiB" in result.stderr
    qa("remove", "small", "--index", str(cli_index))
