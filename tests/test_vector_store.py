"""The vector store interface: FAISS (default) and Qdrant (embedded local mode here; a server in production)
give the same answers, and Qdrant indexes update, version and fail like FAISS ones."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from qa.assistant import Assistant
from qa.errors import IndexCorruptError, InputError, VectorStoreError
from qa.evaluation import load_gold
from qa.vector_store import create_store, parse_spec

from conftest import ROOT, SEEDS


@pytest.fixture(scope="module")
def qdrant_assistant(tmp_path_factory, tiny_config):
    return Assistant.build([SEEDS], tmp_path_factory.mktemp("qdrant") / "seeds", tiny_config.with_(vector_store="qdrant"))


def comparable(answer) -> dict:
    """An answer and its passages, cosines rounded: the two engines sum in different float orders."""
    passages = [(h.passage.doc_id, h.passage.start, h.passage.end, h.dense_rank, h.lexical_rank,
                 None if h.dense_score is None else round(h.dense_score, 4)) for h in answer.passages]
    return {**answer.to_dict(), "passages": passages}


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_gold_questions_get_the_same_answers_on_faiss_and_qdrant(seed_assistant, qdrant_assistant, mode):
    assert qdrant_assistant.index.store.describe() == "Qdrant (embedded)"
    assert seed_assistant.index.store.describe() == "FAISS Flat"
    for item in load_gold(ROOT / "eval" / "gold.jsonl"):
        faiss_answer = seed_assistant.ask(item.question, mode=mode, threshold=0.0)
        qdrant_answer = qdrant_assistant.ask(item.question, mode=mode, threshold=0.0)
        assert comparable(qdrant_answer) == comparable(faiss_answer), item.question


def test_qdrant_index_reopens_adds_and_removes(qdrant_assistant, tmp_path, tiny_config):
    folder = tmp_path / "seeds"
    shutil.copytree(qdrant_assistant.index_dir.resolve(), folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["vector_store"]["engine"] == "qdrant" and manifest["vector_store"]["count"] == 34
    question = "Where is the CSTO headquartered?"
    reopened = Assistant.load(folder, tiny_config)
    before = comparable(reopened.ask(question, threshold=0.0))
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "river.txt").write_text("The Moskva river flows through Moscow.\n\nIt is 503 km long.\n")
    reopened.add([tmp_path / "new"])
    assert len(reopened.index.store) == 35
    assert reopened.retrieve("How long is the Moskva river?", mode="dense")[0].passage.doc_id == "river"
    reopened.remove("river")
    again = Assistant.load(folder, tiny_config)
    assert comparable(again.ask(question, threshold=0.0)) == before
    assert len(list((tmp_path / ".seeds.versions").iterdir())) == 1  # old versions and their stores are swept


def test_missing_qdrant_collection_is_a_clear_error(qdrant_assistant, tmp_path, tiny_config):
    folder = tmp_path / "seeds"
    shutil.copytree(qdrant_assistant.index_dir.resolve(), folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["vector_store"]["collection"] = "gone"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match="collection 'gone' is missing"):
        Assistant.load(folder, tiny_config)


def test_an_unreachable_qdrant_server_is_a_clear_error(tmp_path):
    store = create_store("qdrant:http://127.0.0.1:9", np.eye(4, dtype=np.float32))
    (tmp_path / "v1").mkdir()
    with pytest.raises(VectorStoreError, match="Qdrant server at http://127.0.0.1:9"):
        store.save(tmp_path / "v1")


@pytest.mark.parametrize("spec", ["milvus", "faiss:http://x", ""])
def test_unknown_vector_store_is_an_input_error(spec):
    with pytest.raises(InputError, match="vector store must be"):
        parse_spec(spec)
