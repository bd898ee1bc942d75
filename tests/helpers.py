"""Helpers shared by test modules: the `qa` command in a subprocess (and its peak memory), comparable answers,
PDF files, a free port."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
from pathlib import Path

TIME = "/usr/bin/time"  # GNU time (Debian package `time`)
QUESTIONS = ["Where is the CSTO headquartered?", "Who is the Secretary General of the CSTO?",
             "Which countries attended the summit in Bishkek?", "What did Putin propose?"]


def answers_of(assistant) -> list[tuple]:
    """Answers and retrieved passages, comparable across index versions."""
    out = []
    for q in QUESTIONS:
        a = assistant.ask(q, threshold=0.0)
        out.append((a.text, round(a.score, 5), [(h.passage.doc_id, h.passage.start, h.passage.end) for h in a.passages]))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def qa(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`qa ARGS...` run as a new Python process."""
    return subprocess.run([sys.executable, "-m", "qa.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def run_measured(command: list[str], timeout: float = 300) -> tuple[subprocess.CompletedProcess, int]:
    """Run `command`; return its result and its peak resident memory in bytes, as GNU time measures it.

    (Not wait4 from this process: a child forked from a large test process starts with its parent's pages.)"""
    with tempfile.NamedTemporaryFile("r") as peak:
        result = subprocess.run([TIME, "-f", "%M", "-o", peak.name, *command], capture_output=True, text=True,
                                timeout=timeout)
        return result, int(peak.read().split()[-1]) * 1024  # GNU time reports KiB


def make_pdf(path: Path, pages: list[str]) -> Path:
    """A real PDF with a text layer, one page per string (written by matplotlib's PDF backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    with PdfPages(path) as pdf:
        for text in pages:
            fig = plt.figure(figsize=(8.5, 11))
            fig.text(0.1, 0.9, text, fontsize=12)
            pdf.savefig(fig)
            plt.close(fig)
    return path
