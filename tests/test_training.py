"""The reader's training recipe: data split, labels, and a smoke run of `train_reader` on a handful of questions."""

from __future__ import annotations

import json
import random
import re
import unicodedata

import pytest

from conftest import ROOT
from qa.reader import CALIBRATION_FILE, Reader
from qa.training.features import encode_examples
from qa.training.squad import load_squad, split_by_passage, with_negative_passages
from qa.training.train import TrainSettings, length_grouped_batches, train_reader

DATA = ROOT / "training" / "data"


@pytest.fixture(scope="module")
def examples():
    return load_squad([DATA])


def test_training_data_is_large_and_mixed(examples):
    contexts = {e.context for e in examples}
    assert len(examples) >= 3000 and len(contexts) >= 400
    assert 0.1 < sum(e.answer is None for e in examples) / len(examples) < 0.4
    for e in examples:
        if e.answer is not None:
            assert e.context[e.answer_start:e.answer_start + len(e.answer)] == e.answer


def test_training_data_never_mentions_the_seed_documents(examples):
    banned = ("CSTO", "Collective Security Treaty", "Bordyuzha", "Rogozin", "Bishkek")
    for e in examples:
        assert not any(word in e.context or word in e.question for word in banned), e.id


def test_dev_passages_are_never_trained_on(examples):
    train, dev = split_by_passage(examples, 0.12, seed=13)
    assert dev and not {e.context for e in train} & {e.context for e in dev}
    assert split_by_passage(examples, 0.12, seed=13) == (train, dev)


def _overlap(question: str, context: str) -> float:
    """The share of the question's longer words (4+ letters) that the context also has."""
    words = {w for w in re.findall(r"\w+", question.lower()) if len(w) > 3}
    return len(words & set(re.findall(r"\w+", context.lower()))) / max(len(words), 1)


def test_negative_passages_are_near_misses_without_the_answer(examples):
    some = examples[:400]
    extended = with_negative_passages(some, rate=1.0, seed=1)
    negatives = extended[len(some):]
    originals = {e.id: e for e in some}
    answerable = sum(e.answer is not None for e in some)
    assert extended[:len(some)] == some and 0.9 * answerable <= len(negatives) <= answerable
    for n in negatives:
        original = originals[n.id.removesuffix("-neg")]
        assert n.answer is None and n.answer_start is None and n.question == original.question
        assert n.context != original.context
        assert not re.search(rf"(?<!\w){re.escape(original.answer)}(?!\w)", n.context, re.IGNORECASE), n.id
    contexts = sorted({e.context for e in some})
    rng = random.Random(0)
    near = sum(_overlap(n.question, n.context) for n in negatives)
    chance = sum(_overlap(n.question, rng.choice(contexts)) for n in negatives)
    assert near > 2 * chance  # retrieval-like neighbours, not random passages


def test_length_grouped_batches_cover_every_window_once_and_pad_little():
    rng = random.Random(0)
    lengths = [rng.randint(20, 256) for _ in range(5000)]
    batches = length_grouped_batches(lengths, 16, random.Random(1))
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(1 <= len(b) <= 16 for b in batches)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    shuffled = list(range(len(lengths)))
    rng.shuffle(shuffled)
    padded_at_random = sum(16 * max(lengths[i] for i in shuffled[j:j + 16]) for j in range(0, len(shuffled), 16))
    assert padded < 0.7 * padded_at_random
    assert length_grouped_batches(lengths, 16, random.Random(2)) != batches


def test_labels_point_at_the_answer_tokens(tiny_reader, examples):
    reader = Reader(tiny_reader)
    sample = [e for e in examples if e.answer is not None][:50]
    features = encode_examples(reader.tokenizer, sample, max_length=128, stride=32)
    labelled = [f for f in features if f["start_positions"] > 0]
    assert labelled
    for feature in labelled:
        tokens = feature["input_ids"][feature["start_positions"]:feature["end_positions"] + 1]
        decoded = reader.tokenizer.decode(tokens).replace(" ", "")
        assert any(decoded in _bare(e.answer) for e in sample), decoded


def _bare(text: str) -> str:
    """Lower case without spaces or accents, as the uncased tokenizer decodes it ("Inês" -> "ines")."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c) and c != " ")


def test_train_reader_smoke(tmp_path, tiny_reader):
    settings = TrainSettings(data=[str(DATA)], base=tiny_reader, epochs=1, batch_size=8, max_length=128, stride=32,
                             curve=(0.5, 1.0), max_examples=48, dev_fraction=0.25, bf16=False)
    record = train_reader(settings, tmp_path / "reader", command="test", progress=False)
    saved = json.loads((tmp_path / "reader" / CALIBRATION_FILE).read_text())
    assert saved == json.loads(json.dumps(record))
    assert [c["share"] for c in record["curve"]] == [0.5, 1.0]
    assert 0.0 <= record["dev"]["f1"] <= 100.0 and record["dev"]["questions"] > 0
    reader = Reader(str(tmp_path / "reader"))
    assert reader.threshold == pytest.approx(record["threshold"])
    assert reader.read("What is it?", [reader_passage()]) is not None
    assert_only_the_encoder_was_trained(tiny_reader, tmp_path / "reader")


def assert_only_the_encoder_was_trained(base: str, trained: str) -> None:
    """Word embeddings stay as the base has them (to fp16 rounding); the layers above them moved."""
    import torch
    from transformers import AutoModelForQuestionAnswering

    before, after = (AutoModelForQuestionAnswering.from_pretrained(m, dtype=torch.float32) for m in (base, trained))

    def words(model):
        return model.get_input_embeddings().weight.half()

    def first_layer(model):
        return next(p for n, p in model.named_parameters() if "encoder.layer.0." in n and n.endswith("weight")).half()

    assert torch.equal(words(before), words(after))
    assert not torch.equal(first_layer(before), first_layer(after))


def reader_passage():
    from qa.passages import Passage

    text = "The museum opened in 1911 on the river bank."
    return Passage("d", 0, len(text), text)
