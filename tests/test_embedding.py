"""Questions are embedded without importing sentence-transformers, into exactly the vectors it would give."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from qa.config import default_embedder
from qa.embedding import Embedder

TEXTS = ["Who is the Secretary General?", "  padded question with spaces  ", "Ünïcödé and émigré — “quotes”",
         "a", " ".join(["very long question"] * 200)]  # the last one is cut at the model's max_seq_length


def test_query_vectors_equal_sentence_transformers_vectors():
    embedder = Embedder(default_embedder())
    assert embedder.query_encoder is not None
    expected = embedder.model.encode(TEXTS, normalize_embeddings=True, batch_size=1)
    for text, vector in zip(TEXTS, expected):
        assert np.abs(embedder.encode_query(text) - vector).max() < 1e-5, text
    assert embedder.dimension == expected.shape[1]


@pytest.mark.parametrize("prompted", [False, True])
def test_other_model_folders_are_left_to_sentence_transformers(tmp_path, other_embedder, prompted):
    """A folder in another format, or with a default prompt, is encoded by sentence-transformers itself."""
    folder = tmp_path / "st"
    shutil.copytree(default_embedder() if prompted else other_embedder, folder)
    if prompted:
        (folder / "config_sentence_transformers.json").write_text('{"prompts": {"query": "query: "}, '
                                                                  '"default_prompt_name": "query"}')
    embedder = Embedder(str(folder))
    assert embedder.query_encoder is None
    expected = embedder.model.encode(["a question"], normalize_embeddings=True)[0]
    assert np.abs(embedder.encode_query("a question") - expected).max() < 1e-6


def test_answering_does_not_import_sentence_transformers(seed_index_master, tiny_reader):
    code = ("import sys; from qa import Assistant, Config; "
            f"a = Assistant.load({str(seed_index_master)!r}, Config(reader={tiny_reader!r})); "
            "a.ask('Where is the CSTO headquartered?'); print('sentence_transformers' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.stdout.strip().splitlines()[-1] == "False", run.stderr[-2000:]
