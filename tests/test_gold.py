"""The gold question set is well formed: every gold answer stands in its document at its offset."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from conftest import ROOT, SEEDS
from qa.documents import load_document

GOLD = ROOT / "eval" / "gold.jsonl"


@pytest.fixture(scope="module")
def gold() -> list[dict]:
    return [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_gold_answers_stand_in_their_documents(gold):
    texts = {p.stem: load_document(p).text for p in SEEDS.glob("*.txt")}
    for item in gold:
        if item["answers"]:
            text = texts[item["doc_id"]]
            start = item["answer_start"]
            assert text[start:start + len(item["answers"][0])] == item["answers"][0], item["id"]
        else:
            assert item["doc_id"] is None and item["answer_start"] is None, item["id"]


def test_gold_set_covers_what_the_evaluation_needs(gold):
    ids = [item["id"] for item in gold]
    assert len(ids) == len(set(ids)) and len(gold) >= 80
    assert sum(not item["answers"] for item in gold) >= 15
    per_doc = Counter(item["doc_id"] for item in gold if item["answers"])
    assert set(per_doc) == {p.stem for p in SEEDS.glob("*.txt")}
    words = Counter(item["question"].split()[0].lower() for item in gold)
    for kind in ("who", "what", "when", "where", "how", "which", "why"):
        assert words[kind] > 0, f"no {kind!r} questions"
