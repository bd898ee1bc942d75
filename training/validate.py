"""Check SQuAD-2 JSON files of reader training data: offsets, ids, unanswerables.

Usage: python training/validate.py training/data/*.json
"""

import json
import sys
from pathlib import Path


def check(path: Path) -> tuple[int, int, int, list[str]]:
    """Return (passages, answerable, unanswerable, problems) for one file."""
    problems: list[str] = []
    data = json.loads(path.read_text(encoding="utf-8"))
    passages = answerable = unanswerable = 0
    seen_ids: set[str] = set()
    for article in data["data"]:
        for para in article["paragraphs"]:
            passages += 1
            context = para["context"]
            for qa in para["qas"]:
                qid = qa["id"]
                if qid in seen_ids:
                    problems.append(f"{qid}: duplicate id")
                seen_ids.add(qid)
                if not qa["question"].strip().endswith("?"):
                    problems.append(f"{qid}: question does not end with '?'")
                if qa.get("is_impossible"):
                    unanswerable += 1
                    if qa["answers"]:
                        problems.append(f"{qid}: impossible question has answers")
                    for ans in qa.get("plausible_answers", []):
                        if context[ans["answer_start"]:ans["answer_start"] + len(ans["text"])] != ans["text"]:
                            problems.append(f"{qid}: plausible answer offset wrong")
                    continue
                answerable += 1
                if not qa["answers"]:
                    problems.append(f"{qid}: answerable question without answers")
                for ans in qa["answers"]:
                    start = ans["answer_start"]
                    if context[start:start + len(ans["text"])] != ans["text"]:
                        problems.append(f"{qid}: answer {ans['text']!r} not at {start}")
    return passages, answerable, unanswerable, problems


def main(paths: list[str]) -> int:
    total = [0, 0, 0]
    bad = 0
    for name in paths:
        p, a, u, problems = check(Path(name))
        total = [total[0] + p, total[1] + a, total[2] + u]
        print(f"{name}: {p} passages, {a} answerable, {u} unanswerable, {len(problems)} problems")
        for problem in problems[:20]:
            print("   ", problem)
        bad += len(problems)
    print(f"total: {total[0]} passages, {total[1]} answerable, {total[2]} unanswerable")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
