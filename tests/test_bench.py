"""`eval/bench.py --quick` runs end to end on the real models and prints its figures; nothing about time is asserted."""

from __future__ import annotations

import json
import math
import subprocess
import sys

from conftest import ROOT


def test_quick_benchmark_prints_every_figure_and_a_json_last_line(seed_index_master, tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "eval" / "bench.py"), "--quick", "--index", str(seed_index_master),
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.strip().splitlines()
    figures = json.loads(lines[-1])
    for key in ("latency_ratio", "latency_p50_ms", "cold_start_s", "index_throughput_ratio", "recall_at_10"):
        assert math.isfinite(figures[key]) and figures[key] > 0, key
    assert figures["recall_at_10_index"] == "Flat" and figures["recall_at_10"] == 1.0  # exact search is exact
    assert any("import torch" in line for line in lines)  # the cold start says where its time goes
    report = json.loads((tmp_path / "bench.json").read_text())
    assert {row["factory"].split(",")[0].rstrip("0123456789") for row in report["scale"]} == {"Flat", "HNSW", "IVF"}
    assert (tmp_path / "scale.png").stat().st_size > 10_000
