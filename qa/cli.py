"""`qa index | add | remove | docs | ask | eval | serve | train-reader`: parse arguments, call the library, print."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys

from qa.documents import MAX_DOCUMENT_BYTES
from qa.errors import DocqaError, InputError

# A path the user named cannot be used: their mistake (exit 2). Other OSErrors (a full disk) are failures (exit 1).
_PATH_ERRORS = (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError)


def _one_line(exc: BaseException) -> str:
    """The error's message on one line (some model loaders raise messages of many lines)."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    return " ".join(str(exc).split())


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line that points to --help."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _positive_int(text: str) -> int:
    """An argument that must be a whole number of 1 or more."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of 1 or more, not {text!r}")
    return int(text)


def _finite_float(text: str) -> float:
    """An argument that must be a finite number."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a number, not {text!r}")
    return value


def _config(args):
    from qa.config import Config

    max_mb = getattr(args, "max_document_mb", None)
    changes = {k: v for k, v in (("embedder", args.embedder), ("reader", args.reader),
                                 ("vector_store", getattr(args, "vector_store", None)),
                                 ("max_document_bytes", max_mb and max_mb * 2**20)) if v}
    return Config(**changes)


def _print_report(report) -> None:
    for info in report.added:
        print(f"added {info.id}: {info.title!r} ({info.chars} chars, {info.passages} passages)")
    for doc_id in report.removed:
        print(f"removed {doc_id}")
    for failure in report.skipped:
        print(f"skipped {failure.path}: {failure.reason}", file=sys.stderr)


def cmd_index(args) -> int:
    from qa.assistant import Assistant

    assistant = Assistant.build(args.sources, args.out, _config(args), show_progress=not args.quiet)
    _print_report(assistant.report)
    print(f"indexed {len(assistant.index.documents)} documents, {len(assistant.index.passages)} passages "
          f"({assistant.index.store.describe()}) into {args.out}")
    return 0


def cmd_add(args) -> int:
    from qa.assistant import Assistant

    report = Assistant.load(args.index, _config(args)).add(args.sources, show_progress=not args.quiet)
    _print_report(report)
    return 0 if report.added or not report.skipped else 2


def cmd_remove(args) -> int:
    from qa.assistant import Assistant

    _print_report(Assistant.load(args.index, _config(args)).remove(args.doc_id))
    return 0


def cmd_docs(args) -> int:
    from qa.assistant import Assistant

    for info in Assistant.load(args.index, _config(args)).documents():
        print(f"{info.id}\t{info.chars} chars\t{info.passages} passages\t{info.title}")
    return 0


def cmd_ask(args) -> int:
    from qa.assistant import Assistant

    answer = Assistant.load(args.index, _config(args)).ask(args.question, top_k=args.top_k, mode=args.mode,
                                                          threshold=args.threshold)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False))
        return 0
    if answer.abstained:
        print(f"No answer in the documents ({answer.reason}).")
        for hit in answer.passages[:3]:
            print(f"  closest passage: [{hit.passage.doc_id} {hit.passage.start}-{hit.passage.end}] "
                  f"{hit.passage.text[:160]}...")
        return 0
    print(f"{answer.text}  (confidence {answer.score:.2f})")
    for n, c in enumerate(answer.citations, start=1):
        page = f", page {c.page}" if c.page else ""
        print(f"  [{n}] {c.title} ({c.doc_id}, chars {c.start}-{c.end}{page}): {c.sentence}")
    return 0


def cmd_eval(args) -> int:
    if args.compare:
        from qa.report import compare_reports, format_comparison

        print(format_comparison(compare_reports(*args.compare)))
        return 0
    missing = [flag for flag, value in (("--index", args.index), ("--gold", args.gold), ("--out", args.out))
               if not value]
    if missing:
        raise InputError(f"qa eval needs {', '.join(missing)} (or --compare A.json B.json)")
    from qa.assistant import Assistant
    from qa.evaluation import evaluate
    from qa.report import write_report

    config = _config(args)
    if args.threshold is not None:
        config = config.with_(abstain_threshold=args.threshold)
    report = evaluate(Assistant.load(args.index, config), args.gold, progress=not args.quiet)
    paths = write_report(report, args.out)
    o, r, b = report.overall, report.overall.reader, report.overall.baseline
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{o.questions} questions ({o.answerable} answerable) in {report.meta['elapsed_s']:.1f} s")
    print(f"reader:   EM {r.exact_match:.1f}  F1 {r.f1:.1f}  HasAns F1 {r.has_ans_f1:.1f}  "
          f"NoAns acc {r.no_ans_accuracy:.1f}  citation acc {r.citation_accuracy:.1f}")
    print(f"baseline: EM {b.exact_match:.1f}  F1 {b.f1:.1f}  (best retrieved sentence)")
    for mode, m in o.retrieval.items():
        print(f"{mode:<8}  recall@1/5/10 {m.recall['1']:.1f} / {m.recall['5']:.1f} / {m.recall['10']:.1f}  "
              f"MRR {m.mrr:.3f}")
    t = o.threshold
    print(f"threshold {t.configured:.3f} ({t.configured_source}): F1 {t.f1_at_configured:.1f}; "
          f"best on this set {t.best:.3f}: F1 {t.f1_at_best:.1f}")
    print(f"latency p50 {1000 * o.latency.p50_s:.0f} ms, p95 {1000 * o.latency.p95_s:.0f} ms")
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def cmd_train_reader(args) -> int:
    from pathlib import Path

    from qa.training.train import TrainSettings, plot_curve, train_reader

    settings = TrainSettings(data=args.data, base=args.base or TrainSettings().base, epochs=args.epochs,
                             learning_rate=args.lr, batch_size=args.batch_size, max_length=args.max_length,
                             stride=args.stride, negatives=args.negatives, dev_fraction=args.dev_fraction,
                             dev_distractors=args.dev_distractors,
                             seed=args.seed, bf16=not args.no_bf16,
                             freeze_embeddings=not args.train_embeddings, curve=tuple(float(x) for x in args.curve.split(",")),
                             max_examples=args.max_examples)
    report = Path(args.report)
    report.mkdir(parents=True, exist_ok=True)

    def write_report(record: dict) -> None:
        (report / "reader_dev.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
        plot_curve(record, report / "reader_learning_curve.png")

    record = train_reader(settings, args.out, command="qa " + " ".join(sys.argv[1:]), progress=not args.quiet,
                          on_record=write_report)
    dev = record["dev"]
    print(f"reader written to {args.out}: dev EM {dev['exact_match']:.1f}, F1 {dev['f1']:.1f}, "
          f"no-answer accuracy {dev['no_answer_accuracy']:.1f} on {dev['questions']} questions, "
          f"threshold {dev['threshold']:.3f}; report in {report}")
    return 0


def cmd_serve(args) -> int:
    from ui.app import serve

    serve(args.index, host=args.host, port=args.port, config=_config(args))
    return 0


TRAIN_RECIPE = """Fine-tune an encoder as an extractive question-answering model (start/end logits over token windows,
SQuAD-2 no-answer at the CLS position) on SQuAD-2 JSON files. The passages are split into train and dev
(dev passages are never trained on). For the learning curve, a model is trained on each share of the training
passages given by --curve and scored on dev, each dev question read over its own passage and the
--dev-distractors dev passages BM25 ranks nearest, as retrieval brings them; the one trained on all of them is
written to --out as fp16 safetensors with its fast tokenizer, and its abstention threshold (best dev F1 over
answerable and unanswerable questions) is stored with the recipe and scores in docqa_reader.json. Batches group
windows of similar length; the word embeddings stay frozen and the attention weights get no dropout, which
makes a CPU step about twice as fast (eval/train_bench.py). Fixed seeds; CPU is enough: about 47 minutes on 2
cores for 18,400 training questions (1.5 epochs, dev scoring included), and each smaller --curve share adds its
part of that (0.5 adds about 32 minutes)."""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="qa", description="Question answering over your documents, with citations.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    models = argparse.ArgumentParser(add_help=False)
    models.add_argument("--embedder", help="sentence-transformers model folder or hub id (default: all-MiniLM-L6-v2)")
    models.add_argument("--reader", help="question-answering model folder or hub id (default: the shipped reader)")
    quiet = argparse.ArgumentParser(add_help=False)
    quiet.add_argument("--quiet", action="store_true", help="no progress bar")
    sources = argparse.ArgumentParser(add_help=False)
    sources.add_argument("--max-document-mb", type=_positive_int, metavar="MB",
                         help=f"skip (and name) files larger than this (default {MAX_DOCUMENT_BYTES // 2**20})")

    p = sub.add_parser("index", parents=[models, quiet, sources], help="index documents (files or folders) into a new index")
    p.add_argument("sources", nargs="+", metavar="SRC", help=".txt, .md, .html or .pdf files, or folders of them")
    p.add_argument("--out", required=True, metavar="DIR", help="index folder to write (replaced atomically)")
    p.add_argument("--vector-store", metavar="ENGINE",
                   help="faiss (default), qdrant (embedded, in the index folder) or qdrant:<server url>")
    p.set_defaults(run=cmd_index)

    p = sub.add_parser("add", parents=[models, quiet, sources], help="add documents to an existing index")
    p.add_argument("sources", nargs="+", metavar="SRC")
    p.add_argument("--index", required=True, metavar="DIR")
    p.set_defaults(run=cmd_add)

    p = sub.add_parser("remove", parents=[models], help="remove a document from an index")
    p.add_argument("doc_id")
    p.add_argument("--index", required=True, metavar="DIR")
    p.set_defaults(run=cmd_remove)

    p = sub.add_parser("docs", parents=[models], help="list the documents of an index")
    p.add_argument("--index", required=True, metavar="DIR")
    p.set_defaults(run=cmd_docs)

    p = sub.add_parser("ask", parents=[models], help="answer a question from an index")
    p.add_argument("question")
    p.add_argument("--index", required=True, metavar="DIR")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--top-k", type=_positive_int, default=None, help="passages to read (default 5)")
    p.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default=None, help="retriever (default hybrid)")
    p.add_argument("--threshold", type=_finite_float, default=None,
                   help="abstain under this score (default: calibrated)")
    p.set_defaults(run=cmd_ask)

    p = sub.add_parser("eval", parents=[models, quiet], help="score an index and reader against a gold question set",
                       description="Exact match, F1, citation accuracy, retrieval recall@k/MRR per retriever, "
                                   "abstention and latency, with a best-sentence baseline; writes report.json, "
                                   "report.md and PNG plots. With --compare, diff two report.json files.")
    p.add_argument("--index", metavar="DIR", help="index folder to evaluate")
    p.add_argument("--gold", metavar="FILE", help="gold questions, JSON Lines: id, question, answers, doc_id, answer_start")
    p.add_argument("--out", metavar="DIR", help="folder for report.json, report.md and the plots")
    p.add_argument("--threshold", type=_finite_float, default=None, help="abstention threshold (default: calibrated)")
    p.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"),
                   help="print per-metric differences and flipped questions between two reports, and exit")
    p.set_defaults(run=cmd_eval)

    p = sub.add_parser("train-reader", parents=[quiet], help="train the extractive reader on SQuAD-2 data",
                       description=TRAIN_RECIPE)
    p.add_argument("--data", nargs="+", default=["training/data"], help="SQuAD-2 JSON files or folders")
    p.add_argument("--out", default="qa/models/reader", help="model folder to write (default: the shipped reader)")
    p.add_argument("--report", default="eval/reports/reader", help="folder for dev scores and the learning curve")
    p.add_argument("--base", help="encoder to start from (default: the MiniLM of all-MiniLM-L6-v2)")
    p.add_argument("--epochs", type=float, default=1.5)
    p.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (linear warm-up and decay)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=256, help="tokens per window")
    p.add_argument("--stride", type=int, default=96, help="tokens shared by consecutive windows")
    p.add_argument("--negatives", type=float, default=0.3,
                   help="share of answerable questions also shown, as unanswerable, with the BM25-nearest passage "
                        "that lacks the answer")
    p.add_argument("--dev-fraction", type=float, default=0.12, help="share of passages held out for dev")
    p.add_argument("--dev-distractors", type=int, default=4,
                   help="other dev passages (the BM25 nearest) read with each dev question's own, as retrieval brings")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--no-bf16", action="store_true", help="train in float32 (bf16 autocast is ~1.5x faster on CPU)")
    p.add_argument("--train-embeddings", action="store_true",
                   help="also train the word embeddings (frozen by default: a faster step, and words unseen in training "
                        "keep their pre-trained place)")
    p.add_argument("--curve", default="1", help="shares of training passages for the learning curve, e.g. 0.5,1")
    p.add_argument("--max-examples", type=int, default=None, help="use only the first N questions (smoke tests)")
    p.set_defaults(run=cmd_train_reader)

    p = sub.add_parser("serve", parents=[models], help="serve the chat (Gradio) over an index")
    p.add_argument("--index", required=True, metavar="DIR", help="index folder to serve")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    p.set_defaults(run=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # pypdf logs each repair it tries on a damaged PDF; the `skipped FILE: reason` line is what a person needs.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (InputError, *_PATH_ERRORS) as exc:
        print(f"qa: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except (DocqaError, OSError) as exc:
        print(f"qa: failed: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("qa: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
