"""The index on disk: self-describing, validated on load, written atomically, updated incrementally."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qa.assistant import Assistant
from qa.config import Config
from qa.errors import IndexCorruptError, IndexLockedError, IndexMismatchError, IndexNotFoundError, InputError
from qa.index import FORMAT_VERSION, lock_for
from qa.vector_store import choose_factory

from conftest import SEEDS
from helpers import answers_of


def test_manifest_describes_the_index(seed_index_master):
    manifest = json.loads((seed_index_master / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["embedder"]["dimension"] == 384 and len(manifest["embedder"]["files_sha256"]) == 64
    assert manifest["vector_store"] == {"engine": "faiss", "factory": "Flat", "metric": "inner_product",
                                          "count": manifest["passages"]["count"]}
    assert set(manifest["documents"]) == {p.stem for p in SEEDS.glob("*.txt")}
    doc = manifest["documents"]["000_2ef42ea9fb4c94c9"]
    assert set(doc) >= {"sha256", "title", "source", "passages"}
    assert manifest["passages"]["count"] == sum(d["passages"] for d in manifest["documents"].values())


def test_stored_passages_are_windows_of_stored_documents(seed_assistant):
    for p in seed_assistant.index.passages:
        assert seed_assistant.index.documents[p.doc_id].text[p.start:p.end] == p.text


def test_factory_follows_corpus_size():
    assert choose_factory(1_000) == "Flat"
    assert choose_factory(200_000).startswith("HNSW")
    assert choose_factory(10_000_000).startswith("IVF")


def test_loading_with_another_embedding_model_fails_clearly(seed_index, other_embedder, tiny_reader):
    with pytest.raises(IndexMismatchError, match="built with embedding model"):
        Assistant.load(seed_index, Config(embedder=other_embedder, reader=tiny_reader))


def test_stale_format_version_fails_clearly(seed_index, tiny_config):
    manifest = json.loads((seed_index / "manifest.json").read_text())
    manifest["format_version"] = 0
    (seed_index / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="format version 0"):
        Assistant.load(seed_index, tiny_config)


def test_missing_index_fails_clearly(tmp_path, tiny_config):
    with pytest.raises(IndexNotFoundError, match="no index at"):
        Assistant.load(tmp_path / "nowhere", tiny_config)


@pytest.mark.parametrize("damage", ["truncate-faiss", "drop-passages", "garble-manifest", "drop-vectors"])
def test_damaged_index_fails_clearly(seed_index, tiny_config, damage):
    if damage == "truncate-faiss":
        path = seed_index / "index.faiss"
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "drop-passages":
        (seed_index / "passages.jsonl").unlink()
    elif damage == "garble-manifest":
        (seed_index / "manifest.json").write_text("{not json")
    else:
        (seed_index / "vectors.npy").unlink()
    with pytest.raises(IndexCorruptError):
        Assistant.load(seed_index, tiny_config)


def test_add_then_remove_returns_the_same_answers(tmp_path, tiny_config):
    sources = sorted(SEEDS.glob("*.txt"))
    folder = tmp_path / "idx"
    assistant = Assistant.build(sources[:-1], folder, tiny_config)
    before = answers_of(assistant)
    report = assistant.add([sources[-1]])
    assert [d.id for d in report.added] == [sources[-1].stem]
    assert sources[-1].stem in {d.id for d in Assistant.load(folder, tiny_config).documents()}
    assistant.remove(sources[-1].stem)
    assert answers_of(assistant) == before
    assert answers_of(Assistant.load(folder, tiny_config)) == before


def test_adding_reuses_existing_vectors(seed_index, tiny_config, tmp_path):
    assistant = Assistant.load(seed_index, tiny_config)
    old = assistant.index.vectors.copy()
    extra = tmp_path / "ferry.txt"
    extra.write_text("Ferry timetable\nThe ferry to the island leaves at nine every morning.")
    assistant.add([extra])
    assert (assistant.index.vectors[:len(old)] == old).all()
    assert len(assistant.index.vectors) == len(old) + 1


def test_adding_known_or_duplicate_documents_is_reported(seed_index, tiny_config, tmp_path):
    assistant = Assistant.load(seed_index, tiny_config)
    copy = tmp_path / "renamed.txt"
    copy.write_bytes((SEEDS / "000_2ef42ea9fb4c94c9.txt").read_bytes())
    report = assistant.add([copy, SEEDS / "001_d5e288ef131ed605.txt"])
    assert report.added == []
    reasons = sorted(f.reason for f in report.skipped)
    assert "already indexed" in reasons[0] and "same content" in reasons[1]


def test_a_failed_write_leaves_the_previous_index(seed_index, tiny_config, tmp_path, monkeypatch):
    assistant = Assistant.load(seed_index, tiny_config)
    before = answers_of(assistant)
    extra = tmp_path / "new.txt"
    extra.write_text("Lighthouse\nThe lighthouse was automated in 1990.")

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("qa.index.LexicalIndex.save", crash)
    with pytest.raises(OSError, match="disk full"):
        assistant.add([extra])
    monkeypatch.undo()
    reloaded = Assistant.load(seed_index, tiny_config)
    assert "new" not in {d.id for d in reloaded.documents()}
    assert answers_of(reloaded) == before
    leftovers = [v for v in (seed_index.parent / ".seeds.versions").iterdir() if v.resolve() != seed_index.resolve()]
    assert leftovers == []


def test_killing_a_build_midway_leaves_the_previous_index(seed_index, tiny_config, tmp_path):
    before = answers_of(Assistant.load(seed_index, tiny_config))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(400):
        (corpus / f"doc{i}.txt").write_text(f"Report {i}\n" + " ".join(f"Line {j} of report {i} is long enough."
                                                                      for j in range(60)))
    cmd = [sys.executable, "-m", "qa.cli", "index", str(corpus), "--out", str(seed_index), "--reader",
           tiny_config.reader, "--quiet"]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(12)
    assert process.poll() is None, "the build finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert answers_of(Assistant.load(seed_index, tiny_config)) == before


def test_a_second_writer_waits_then_fails_clearly(seed_index, tiny_config, tmp_path):
    extra = tmp_path / "x.txt"
    extra.write_text("Xylophones\nA xylophone has wooden bars.")
    assistant = Assistant.load(seed_index, tiny_config.with_(lock_timeout_s=0.5))
    with lock_for(seed_index, 1):
        with pytest.raises(IndexLockedError, match="another process is writing"):
            assistant.add([extra])
    assistant.add([extra])
    assert "x" in {d.id for d in assistant.documents()}


def test_an_index_where_nothing_can_be_written_fails_at_once(tmp_path, tiny_config):
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(InputError, match="cannot write an index at"):
        Assistant.build([SEEDS], tmp_path / "a-file" / "seeds", tiny_config.with_(lock_timeout_s=30))
