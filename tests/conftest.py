"""Shared fixtures: real models and real indexes, built once per test session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"


def make_tiny_qa_model(folder: Path, seed: int = 0) -> Path:
    """A small, randomly initialised BERT question-answering model with the real MiniLM tokenizer: it
    exercises the reader's mechanics (windows, offsets, scores), not its accuracy."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForQuestionAnswering

    from qa.config import default_embedder

    tokenizer = AutoTokenizer.from_pretrained(default_embedder())
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    BertForQuestionAnswering(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_reader(tmp_path_factory) -> str:
    return str(make_tiny_qa_model(tmp_path_factory.mktemp("tiny-reader")))


@pytest.fixture(scope="session")
def other_embedder(tmp_path_factory) -> str:
    """A second, different sentence-transformers model (random weights) to build mismatching indexes."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    from qa.config import default_embedder

    folder = tmp_path_factory.mktemp("other-embedder")
    tokenizer = AutoTokenizer.from_pretrained(default_embedder())
    torch.manual_seed(1)
    BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=48, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(folder / "bert")
    tokenizer.save_pretrained(folder / "bert")
    word = models.Transformer(str(folder / "bert"))
    SentenceTransformer(modules=[word, models.Pooling(48)]).save(str(folder / "st"))
    return str(folder / "st")


@pytest.fixture(scope="session")
def tiny_config(tiny_reader):
    from qa.config import Config

    return Config(reader=tiny_reader)


@pytest.fixture(scope="session")
def seed_index_master(tmp_path_factory, tiny_config) -> Path:
    """The seed documents indexed once; tests that change an index copy it first (`seed_index`)."""
    from qa.assistant import Assistant

    folder = tmp_path_factory.mktemp("master") / "seeds"
    Assistant.build([SEEDS], folder, tiny_config)
    return folder


@pytest.fixture
def seed_index(seed_index_master, tmp_path) -> Path:
    """A private copy of the seed index (a plain folder, as a user might copy one)."""
    folder = tmp_path / "seeds"
    shutil.copytree(seed_index_master.resolve(), folder)
    return folder


@pytest.fixture(scope="session")
def seed_assistant(seed_index_master, tiny_config):
    from qa.assistant import Assistant

    return Assistant.load(seed_index_master, tiny_config)
