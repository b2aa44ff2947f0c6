"""Hidden knowledge on the default pair (issue 33): run ``interp hidden --json`` (or read a run's
output) and write its numbers, the command, the wall time, the date, the machine and the package
versions to ``benchmarks/results_hidden_knowledge_default.json``.

    .venv/bin/python -m benchmarks.hidden_knowledge                       # runs the command, timed
    .venv/bin/python -m benchmarks.hidden_knowledge --from-jsonl out/hidden_default.jsonl --wall 241
        # records a run made by hand (`/usr/bin/time -v interp hidden --json --out out/hidden_default`)

Pass ``--unmask-facts DIR/unmask_headline_facts.csv`` to measure the agreement with unmasking.
"""

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results_hidden_knowledge_default.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from-jsonl", help="read the last line of a finished `interp hidden --json` run instead of running it")
    ap.add_argument("--wall", type=float, help="with --from-jsonl: the run's wall seconds (from /usr/bin/time)")
    ap.add_argument("--unmask-facts", help="passed to interp hidden: the unmasking per-fact table")
    ap.add_argument("--out-dir", default="out/hidden_default")
    ap.add_argument("--note", default="", help="a remark stored with the numbers (e.g. the CPU was shared)")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--command", help="with --from-jsonl: the command that made the run, as typed")
    args = ap.parse_args()
    cmd = [".venv/bin/interp", "hidden", "--json", "--out", args.out_dir]
    if args.unmask_facts:
        cmd += ["--unmask-facts", args.unmask_facts]
    if args.from_jsonl:
        lines = Path(args.from_jsonl).read_text().strip().splitlines()
        wall = args.wall
    else:
        start = time.perf_counter()
        run = subprocess.run(cmd, capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        lines = run.stdout.strip().splitlines()
    parsed = []
    for x in lines:
        try:
            parsed.append(json.loads(x[x.index("{"):]))
        except ValueError:
            continue  # a progress or text line
    last = parsed[-1]
    if "hidden_knowledge" not in last:
        sys.exit(f"the last line is not the hidden_knowledge line: {lines[-1][:200]}")
    info = next((x for x in parsed if "hidden_knowledge_info" in x), {})
    record = {"command": args.command or shlex.join(cmd), "wall_seconds": wall, "note": args.note, **info, **last}
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.provenance import record as provenance

    provenance(args.out, record["command"], ["interp/knowledge", "interp/knowledge_cli.py", "interp/unmask",
                                              "interp/behavior/answers.py"])
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
