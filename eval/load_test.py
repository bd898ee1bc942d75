"""Load test of the chat server: N gradio_client clients ask questions for S seconds.

    python eval/load_test.py --index indexes/seeds --clients 20 --seconds 60     # starts `qa serve` on a free port
    python eval/load_test.py --url http://127.0.0.1:7860/ --pid 1234            # a server that is already running
    python eval/load_test.py --index indexes/mine --questions my-questions.txt  # your own questions (or a .jsonl)

One client first asks every question alone: its answers are the reference, and the warm-up. Then the
clients ask round-robin, each from its own place in the list, and every answer must equal the reference
answer to the same question. The server's resident memory is sampled every half second with psutil.
Prints latency p50/p95, requests, errors, mismatches and RSS (after warm-up, peak, end); the last line is
one JSON object with the same figures. Exit status 1 if any request failed or any answer differed.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil

QUESTIONS = [  # for the seed index; --questions gives others
    "Where is the CSTO headquartered?",
    "Who is the Secretary General of the CSTO?",
    "Which countries attended the summit in Bishkek?",
    "What did Putin propose?",
    "When was the CSTO established?",
    "Which country froze its membership in the organization?",
    "Где штаб-квартира ОДКБ?",
    "Xqzvth wplorn gribbet snarfle?",
]
MIB = 2**20


def read_questions(path: str) -> list[str]:
    """Questions from a text file, one a line, or from JSON Lines with a "question" field (as eval/gold.jsonl)."""
    lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [json.loads(line)["question"] if path.endswith(".jsonl") else line for line in lines]


@dataclass
class Tally:
    """What the clients saw, added to under a lock."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(index: str, reader: str | None, port: int, timeout_s: float = 300) -> subprocess.Popen:
    """`qa serve` on 127.0.0.1:`port`, returned once it answers HTTP."""
    import httpx

    command = [sys.executable, "-m", "qa.cli", "serve", "--index", index, "--port", str(port)]
    if reader:
        command += ["--reader", reader]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    log = tempfile.TemporaryFile("w+")  # a file, not a pipe: a full pipe would stall the server
    server = subprocess.Popen(command, env=env, stdout=log, stderr=log, text=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            raise SystemExit(f"the server exited with status {server.returncode}: {log.read()[-2000:]}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2).raise_for_status()
            return server
        except httpx.HTTPError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit(f"the server did not answer within {timeout_s:.0f} s")


def client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False)


def reference_answers(url: str, questions: list[str]) -> dict[str, dict]:
    """Each question's answer to a single client, alone on the server."""
    alone = client(url)
    return {q: alone.predict(q, api_name="/ask") for q in questions}


def ask_until(url: str, questions: list[str], start: int, deadline: float, reference: dict[str, dict],
              tally: Tally) -> None:
    """One client: ask round-robin from `start` until `deadline`, checking each answer against the reference."""
    try:
        me = client(url)
    except Exception as exc:  # noqa: BLE001 - a client that cannot connect is an error to count
        with tally.lock:
            tally.errors.append(f"connect: {type(exc).__name__}: {exc}")
        return
    n = start
    while time.monotonic() < deadline:
        question = questions[n % len(questions)]
        n += 1
        began = time.perf_counter()
        try:
            answer = me.predict(question, api_name="/ask")
        except Exception as exc:  # noqa: BLE001 - every failed request is counted, never raised
            with tally.lock:
                tally.errors.append(f"{question!r}: {type(exc).__name__}: {exc}")
            continue
        with tally.lock:
            tally.latencies.append(time.perf_counter() - began)
            if answer != reference[question]:
                tally.mismatches.append(question)


class RssSampler(threading.Thread):
    """Samples the resident memory of process `pid` every `interval` seconds until stopped."""

    def __init__(self, pid: int, interval: float = 0.5):
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.interval = interval
        self.samples: list[int] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            self.samples.append(self.process.memory_info().rss)
            self.halt.wait(self.interval)

    def stop(self) -> list[int]:
        self.halt.set()
        self.join()
        self.samples.append(self.process.memory_info().rss)
        return self.samples


def run_load(url: str, pid: int, clients: int, seconds: float, questions: list[str]) -> dict:
    """Warm up, then load the server at `url` (process `pid`) with `clients` clients for `seconds`."""
    reference = reference_answers(url, questions)
    sampler = RssSampler(pid)
    sampler.start()
    tally = Tally()
    began = time.monotonic()
    threads = [threading.Thread(target=ask_until, args=(url, questions, i, began + seconds, reference, tally))
               for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    rss = sampler.stop()
    latencies = np.array(tally.latencies) * 1000
    return {
        "clients": clients, "seconds": round(elapsed, 1), "questions": len(questions),
        "requests": len(tally.latencies) + len(tally.errors), "errors": len(tally.errors),
        "mismatches": len(tally.mismatches), "throughput_per_s": round(len(latencies) / elapsed, 2),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1) if len(latencies) else None,
        "p95_ms": round(float(np.percentile(latencies, 95)), 1) if len(latencies) else None,
        "rss_start_mib": round(rss[0] / MIB, 1), "rss_peak_mib": round(max(rss) / MIB, 1),
        "rss_end_mib": round(rss[-1] / MIB, 1),
        # At 0, 1/4, 1/2, 3/4 and all of the run: a leak keeps rising to the end, warm-up levels off.
        "rss_quarters_mib": [round(rss[min(i * len(rss) // 4, len(rss) - 1)] / MIB, 1) for i in range(5)],
        "first_errors": tally.errors[:5], "first_mismatches": sorted(set(tally.mismatches))[:5],
    }


def print_summary(result: dict) -> None:
    print(f"{result['clients']} clients for {result['seconds']} s: {result['requests']} requests "
          f"({result['throughput_per_s']}/s), {result['errors']} errors, {result['mismatches']} answers "
          f"differing from the single-client answer")
    print(f"latency p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms")
    print(f"server RSS after warm-up {result['rss_start_mib']} MiB, peak {result['rss_peak_mib']} MiB, "
          f"end {result['rss_end_mib']} MiB; by quarter of the run {result['rss_quarters_mib']} MiB")
    for line in result["first_errors"] + result["first_mismatches"]:
        print(f"  {line}")
    print(json.dumps(result))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--index", help="start `qa serve` over this index folder")
    target.add_argument("--url", help="a running server (give its --pid to sample its memory)")
    parser.add_argument("--pid", type=int, help="process id of the server at --url")
    parser.add_argument("--reader", help="reader model for the started server (default: the shipped reader)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--questions", metavar="FILE",
                        help="questions to ask: one a line, or .jsonl with a question field (default: 8 on the seeds)")
    args = parser.parse_args(argv)
    if args.url and not args.pid:
        parser.error("--url needs --pid, the server's process id, to sample its memory")
    server, url = None, args.url
    if args.index:
        port = free_port()
        server, url = start_server(args.index, args.reader, port), f"http://127.0.0.1:{port}/"
    try:
        result = run_load(url, server.pid if server else args.pid, args.clients, args.seconds,
                          read_questions(args.questions) if args.questions else QUESTIONS)
    finally:
        if server:
            server.terminate()
            server.wait(30)
    print_summary(result)
    return 0 if not result["errors"] and not result["mismatches"] else 1


if __name__ == "__main__":
    sys.exit(main())
