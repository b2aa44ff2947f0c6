"""Error awareness, both models: does the residual stream register that an answer or step is wrong?

(a) arithmetic statements right vs wrong ("23 + 45 = 68" / "= 69"), probe at the last token;
(b) the model's own greedy answers to 1-digit arithmetic ("7 * 8 =", few-shot, plain format for
    both models), right vs wrong, probe at the answer's last token, compared by AUROC with the
    output-confidence baselines (mean and min token log-probability of the answer), as in "LLMs
    Know More Than They Show";
(c) multi-step solutions with one injected wrong step: detect it from the activations at the end
    of the step; with ../shared/datasets present, also BIG-Bench-Mistake (multistep_arithmetic).
    One step in eight (synthetic) or one in five (BBM) is wrong, so these tables show AUROC, and
    layer 0 (resid_post of the first block: the stream after one block) is the surface-cue baseline to beat.

    .venv/bin/python probes/train_error_probes.py                       # all parts
    .venv/bin/python probes/train_error_probes.py --parts multistep,bbm   # some of them
"""

import re
import time

import numpy as np
import pandas as pd
import torch
from datasets import Dataset

from _common import ROOT, finish, layers_arg, out_dir, parser, record, write

from interp import encode, load_pair
from interp.behavior import answer_logprobs, generate
from interp.cache import cache_activations
from interp.data import arithmetic_statements, load_big_bench_mistake, multistep_solutions
from interp.probes import auroc, probe_store, selected_layers
from interp.stats import cluster_bootstrap_ci

BBM = ROOT.parent / "shared" / "datasets" / "big_bench_mistake" / "multistep_arithmetic.jsonl"
PARTS = ("statements", "own", "multistep", "bbm")
#: Few-shot lines before "a op b =" (completion format, both models: in its chat format the default
#: aligned model answers every arithmetic question "I don't know.", and the base cannot follow a
#: question/answer format for arithmetic: 0-8% right on 1-digit sums).
FEW_SHOT = "2 + 3 = 5\n7 - 4 = 3\n6 + 1 = 7\n9 - 5 = 4\n"


def own_answers(pair, side: str, ds: Dataset, batch_size: int) -> Dataset:
    """Each side completes "a op b =" greedily (plain format, few-shot); label 1 if its answer is right."""
    model = pair.side(side)
    questions = [f"{a} {op} {b} =" for a, op, b in zip(ds["a"], ds["op"], ds["b"])]
    prompts = [FEW_SHOT + q for q in questions]
    answers = generate(model, prompts, max_new_tokens=4, batch_size=batch_size, progress=f"{side}: answering")
    rows = []
    for i, (q, ans, true) in enumerate(zip(questions, answers, ds["true_result"])):
        first = ans.strip().splitlines()[0] if ans.strip() else ""
        m = re.search(r"-?\d+", first)
        if not m:
            continue
        shown = m.group(0)
        answer_text = " " + first[: m.end()].strip()
        rows.append({"id": f"{side}-{i}", "text": q, "answer": answer_text, "label": int(int(shown) == true),
                     "entity": ds["entity"][i], "split": ds["split"][i], "prompt": prompts[i]})
    return Dataset.from_list(rows) if rows else None


def main() -> None:
    ap = parser(__doc__.splitlines()[0], "errors")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)}")
    args = ap.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise SystemExit(f"--parts: unknown {unknown or parts}; choose from {', '.join(PARTS)}")
    started = time.time()
    pair = load_pair(args.pair, device=args.device)
    layers = layers_arg(args.layers, pair.n_layers)
    out = out_dir(args.run)
    kw = dict(layers=layers, batch_size=args.batch_size)

    if "statements" in parts:
        statements(pair, args, out, kw, started)
    if "own" in parts:
        own_vs_confidence(pair, args, out, kw)
    if "multistep" in parts:
        ms = multistep_solutions(40 if args.quick else 150, steps=4)
        c_store = cache_activations(pair, ms, positions=["last"], out_dir=out / "cache_multistep", **kw)
        c_frame, _ = probe_store(c_store, n_boot=args.n_boot)
        write(out, "multistep_wrong_step", c_frame, started, metric="auroc")
    if "bbm" in parts:
        if not BBM.is_file():
            print(f"bbm: skipped, {BBM} is absent")
            finish(args, "train_error_probes.py", started)
            return
        bbm = load_big_bench_mistake(BBM)
        keep = sorted(set(bbm["trace"]))[: 40 if args.quick else 120]
        bbm = bbm.filter(lambda t: t in set(keep), input_columns="trace")
        b_store = cache_activations(pair, bbm, positions=["last"], out_dir=out / "cache_bbm", **kw)
        b_frame, _ = probe_store(b_store, n_boot=args.n_boot)
        write(out, "big_bench_mistake_multistep_arithmetic", b_frame, started, metric="auroc")
        record("big_bench_mistake_traces", len(keep))
    finish(args, "train_error_probes.py", started)


def statements(pair, args, out, kw, started) -> None:
    """(a) "a op b = c" right vs wrong, probe at the last token."""
    stm = arithmetic_statements(200 if args.quick else 800, digits=(1, 2, 3))
    a_store = cache_activations(pair, stm, positions=["last"], out_dir=out / "cache_statements", **kw)
    a_frame, _ = probe_store(a_store, n_boot=args.n_boot)
    write(out, "arithmetic_statements", a_frame, started)


def own_vs_confidence(pair, args, out, kw) -> None:
    """(b) the models' own answers: probe AUROC vs output-confidence baselines."""
    qs = arithmetic_statements(120 if args.quick else 280, digits=(1,), error_rate=0.0, seed=1, test_fraction=0.3)
    rows = []
    for side in ("base", "aligned"):
        own = own_answers(pair, side, qs, args.batch_size)
        record(f"own_answers_{side}_counts", {"questions": len(qs), "numeric_answers": 0 if own is None else len(own),
                                              "right": 0 if own is None else int(sum(own["label"]))})
        if own is None or len(set(own["label"])) < 2 or len(own) < 20:
            n_own = 0 if own is None else len(own)
            print(f"{side}: {n_own} numeric answers to {len(qs)} questions: too few (or one class only) to probe")
            rows.append({"model": side, "baseline": "no numeric answers", "auroc": float("nan"), "n_test": 0,
                         "accuracy_of_model": float("nan")})
            continue
        store = cache_activations(pair.side(side), own.map(lambda p: {"text": p}, input_columns="prompt"),
                                  positions=["answer_last"], out_dir=out / f"cache_own_{side}", **kw)
        frame, _ = probe_store(store, n_boot=args.n_boot, kinds=("logistic",))
        frame["model"] = side
        test = np.array(own["split"]) == "test"
        y = torch.tensor(own["label"])[torch.from_numpy(test)]
        prompts = [p for p, t in zip(own["prompt"], test) if t]
        answers = [a for a, t in zip(own["answer"], test) if t]
        means, mins = [], []
        for s in range(0, len(prompts), args.batch_size):
            batch = encode(pair.side(side).tokenizer, prompts[s: s + args.batch_size], answers=answers[s: s + args.batch_size])
            mean, low = answer_logprobs(pair.side(side), batch)
            means.append(mean)
            mins.append(low)
        ents = [e for e, t in zip(own["entity"], test) if t]
        for name, sc in (("mean_logprob", torch.cat(means)), ("min_logprob", torch.cat(mins))):
            lo, hi = cluster_bootstrap_ci(auroc, sc[None], y, ents, n_boot=args.n_boot)
            rows.append({"model": side, "baseline": name, "auroc": float(auroc(sc[None], y)[0]), "ci_low": float(lo[0]),
                         "ci_high": float(hi[0]), "n_test": int(len(y)), "accuracy_of_model": float(np.mean(own["label"]))})
        frame.to_csv(out / f"own_answers_{side}.csv", index=False)
        probe = frame[(frame.metric == "auroc") & (frame.probe == "logistic") & (frame.split == "test")]
        chosen = selected_layers(frame, metric="auroc").iloc[0]  # chosen on validation problems, never the test rows
        first = int(probe.layer.min())  # layer 0 by default: resid_post of the first block
        at_first = probe[probe.layer == first].iloc[0]
        for name, value, lo, hi in ((f"probe (layer {int(chosen.layer)}, chosen on validation)", chosen.auroc, chosen.ci_low,
                                     chosen.ci_high),
                                    ("probe (median over layers)", float(probe["value"].median()), float("nan"), float("nan")),
                                    (f"probe (layer {first})", at_first.value, at_first.ci_low, at_first.ci_high)):
            rows.append({"model": side, "baseline": name, "auroc": float(value), "ci_low": float(lo), "ci_high": float(hi),
                         "n_test": int(len(y)), "accuracy_of_model": float(np.mean(own["label"]))})
    own_table = pd.DataFrame(rows)
    own_table.to_csv(out / "own_answers_vs_confidence.csv", index=False)
    record("own_answers_vs_confidence", own_table)
    print("\n== own answers: probe AUROC vs output-confidence baselines (test split) ==")
    print(own_table.to_string(index=False))


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
