"""Run the `qa` command and kill its process with SIGKILL when an index write reaches a given phase.

    python tests/stop_at.py PHASE QA-ARGS...

The phases, in the order a write goes through them:
  loaded     the documents are read, nothing is embedded yet
  embedding  the first passages are about to be embedded
  writing    the new version folder holds the vectors and index.faiss, but no manifest yet
  swapping   the new version is complete; the link to it is about to replace the index
  swapped    the link has just been swapped; older versions are not yet removed
A run that never reaches its phase exits normally, which the crash tests report as a failure.
"""

from __future__ import annotations

import functools
import os
import signal
import sys

PHASES = ("loaded", "embedding", "writing", "swapping", "swapped")


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def then_die(function):
    """`function`, killing the process as soon as it returns."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        result = function(*args, **kwargs)
        die()
        return result

    return wrapper


def install(phase: str, index_dir: str) -> None:
    """Patch the library so that the process dies at `phase` of a write to `index_dir`."""
    if phase == "loaded":
        import qa.assistant

        qa.assistant.load_documents = then_die(qa.assistant.load_documents)
    elif phase == "embedding":
        from qa.embedding import Embedder

        encode = Embedder.encode
        Embedder.encode = lambda self, texts, **kwargs: die() if texts else encode(self, texts, **kwargs)
    elif phase == "writing":
        import faiss

        faiss.write_index = then_die(faiss.write_index)
    else:
        replace, target = os.replace, os.path.abspath(index_dir)

        def swap(src, dst, **kwargs):
            if os.path.abspath(dst) != target:
                return replace(src, dst, **kwargs)
            if phase == "swapping":
                die()
            return then_die(replace)(src, dst, **kwargs)

        os.replace = swap


def main(argv: list[str]) -> int:
    phase, args = argv[0], argv[1:]
    if phase not in PHASES:
        raise SystemExit(f"phase must be one of {', '.join(PHASES)}, not {phase!r}")
    install(phase, args[args.index("--out" if "--out" in args else "--index") + 1])
    from qa.cli import main as qa_main

    return qa_main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
