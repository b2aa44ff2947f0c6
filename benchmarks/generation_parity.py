"""Greedy answers of the default pair on held-out questions in this environment, compared with a
file written by another environment (another transformers release): the evidence that a release in
the declared range gives the same generations as the locked one.

    .venv/bin/python -m benchmarks.generation_parity --out /tmp/locked.json
    .venv-compat/bin/python -m benchmarks.generation_parity --out /tmp/compat.json --against /tmp/locked.json

The comparison is appended to ``benchmarks/results_generation_parity.jsonl`` with both environments'
versions, the date and the machine.
"""

import argparse
import datetime
import json
import platform
import time
from pathlib import Path


def answers(n: int) -> dict:
    import interp
    from interp.align import graded_facts
    from interp.behavior import generate
    from interp.prompts import format_prompt
    from interp.versions import versions

    pair = interp.load_pair("default", device="cpu")
    g = graded_facts("default")
    qs = list(g[g.split == "test"].head(n).text)
    start = time.perf_counter()
    aligned = generate(pair.aligned, [format_prompt(q, style="chat", tokenizer=pair.aligned.tokenizer) for q in qs],
                       max_new_tokens=8, batch_size=32)
    base = generate(pair.base, [format_prompt(q, style="plain") for q in qs[:100]], max_new_tokens=8, batch_size=32)
    return {"versions": versions(), "aligned": aligned, "base": base, "seconds": time.perf_counter() - start}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--against")
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args()
    mine = answers(args.n)
    Path(args.out).write_text(json.dumps(mine))
    if args.against:
        other = json.loads(Path(args.against).read_text())
        row = {"date": datetime.date.today().isoformat(), "machine": platform.machine(), "n": args.n,
               "this": mine["versions"], "other": other["versions"]}
        for side in ("aligned", "base"):
            row[f"{side}_identical"] = sum(a == b for a, b in zip(mine[side], other[side]))
            row[f"{side}_n"] = len(mine[side])
        with open(Path(__file__).with_name("results_generation_parity.jsonl"), "a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row))


if __name__ == "__main__":
    main()
