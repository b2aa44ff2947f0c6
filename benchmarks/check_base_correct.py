"""The unmasking headline's check of which rephrased facts the base knows, two ways, on the sets of
the measured run (`interp unmask --n 24`): grading every row of the prompt table (the held-out facts
and their exemplar pool; what the check did before 2026-12-05) vs asking only the held-out facts
greedily (`interp.behavior.greedy_answers`, what it does now). Prints, per phrasing and mask, whether
the judgements are equal and both times.

    .venv/bin/python benchmarks/check_base_correct.py
"""
import time
import datasets
import pandas as pd
import interp
from interp.behavior import KnowledgeConfig, grade_knowledge, is_correct
from interp.unmask import facts_for, unmask_sets
from interp.unmask.measure import _base_correct
from interp.unmask.phrasings import PHRASINGS, rephrase

pair = interp.load_pair("default", device="cpu")
sets = unmask_sets(pair, facts_for("default"), n=24, n_guard=100, max_new_tokens=6, batch_size=48, progress=False)
same = total = 0
for phrasing in PHRASINGS:
    for mask, frame in sets.masks.items():
        q = rephrase(frame, phrasing)
        if not len(q):
            continue
        pool = rephrase(sets.train[sets.train.relation.isin(set(frame.relation))].groupby("relation").head(8), phrasing)
        both = pd.concat([q, pool], ignore_index=True)
        t = time.time()
        ds = datasets.Dataset.from_pandas(both[["id", "text", "answer", "aliases", "relation", "split"]].reset_index(drop=True))
        g = grade_knowledge(pair.base, ds, KnowledgeConfig(n_prompts=1, k_samples=1, batch_size=48), progress=False)
        old = [is_correct(a, al) for a, al in zip(g["greedy_answer"], both.aliases)][: len(q)]
        t_old = time.time() - t; t = time.time()
        new = _base_correct(pair, both, 48, rows=len(q))
        t_new = time.time() - t
        same += sum(a == b for a, b in zip(old, new)); total += len(q)
        print(phrasing, mask, len(q), len(both), "equal" if old == new else f"DIFFER {sum(a != b for a, b in zip(old, new))}",
              f"old {t_old:.1f} s new {t_new:.1f} s", flush=True)
print(f"{same}/{total} equal")
