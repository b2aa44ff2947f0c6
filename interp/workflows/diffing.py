"""The diffing analyses of a pair in one call (used by ``interp diff`` and ``interp demo``)."""

import os
from pathlib import Path

__all__ = ["run_diffing"]


def run_diffing(pair, out: "str | os.PathLike[str]", *, pair_name: str | None = "default", n: int = 48,
                max_new_tokens: int = 32, progress: bool = True) -> dict:
    """Weight deltas, representation similarity, per-position KL / token shift and the logit lens
    on held-out questions the aligned model refuses; figures and tables written to ``out`` (see
    :func:`interp.artifacts.save_artifacts`). Returns the headline numbers.

    Inputs: held-out geography statements for the similarity, half held-out chemistry / half
    geography questions for the response analyses, held-out element-symbol questions the aligned
    model refuses for the lens (topped up with ones it misses where it refuses fewer than ``n``);
    from the pair's recipe record where ``pair_name`` has one, else asked of the pair now
    (:func:`interp.workflows.facts.pair_facts`, cached).
    """
    from interp.artifacts import save_artifacts
    from interp.diffing.represent import representation_similarity
    from interp.diffing.shallow import response_shift
    from interp.diffing.weights import weight_deltas
    from interp.lens import lens_pair

    from interp.workflows.facts import pair_facts, refused_questions

    out = Path(out)
    g = pair_facts(pair, pair_name=pair_name, progress=progress)
    test = g[g.split == "test"]
    summary: dict = {}

    w = weight_deltas(pair)
    save_artifacts(out, "weight_deltas", w.to_frame().drop(columns="shape", errors="ignore"), w.figure("Singular values of W_aligned - W_base"))
    summary["weights"] = w.summary()  # changed_matrices, mean_rel_norm, max_effective_rank, max_rank90 (when any changed)

    geo = test[test.domain == "geography"].sample(min(n, int((test.domain == "geography").sum())), random_state=0)
    sim = representation_similarity(pair, geo.statement.tolist(), progress=progress)
    save_artifacts(out, "representation_similarity", sim.to_frame(), sim.figure("Base vs aligned residual streams"))
    summary["similarity"] = sim.summary()  # raw, without massive dimensions, standardised

    chem = test[test.domain == "chemistry"].sample(min(n // 2, int((test.domain == "chemistry").sum())), random_state=0)
    qs = chem.text.tolist() + geo.text.tolist()[: n - n // 2]
    shift = response_shift(pair, qs, max_new_tokens=max_new_tokens, progress=progress)
    save_artifacts(out, "response_kl_by_position", shift.kl_by_position(), shift.figure("KL(aligned || base) by response position"))
    save_artifacts(out, "token_shift", shift.to_frame(), shift.shift_figure("Base-model rank of the aligned model's tokens"))
    save_artifacts(out, "token_shift_top", shift.top_shifted())
    summary["shallow"] = shift.summary()

    n_refused = int(((test.relation == "element_symbol") & (test.aligned_class == "refusal")).sum())
    refused, what = refused_questions(g, n_refused or n)
    lens = lens_pair(pair, refused.text.tolist(), refused.answer.tolist(), base_texts=refused.statement.tolist())
    s = lens.by_layer()
    save_artifacts(out, "logit_lens", s, lens.figure("Refused element symbols: rank of the answer by layer"))
    last = s[s.layer == s.layer.max()].set_index("model")
    summary["lens"] = {"n": len(refused), "questions": what, **{f"{m}_last_layer_median_rank": float(last.loc[m, "median_rank"]) for m in last.index},
                       **{f"{m}_best_median_rank": float(s[s.model == m].median_rank.min()) for m in ("base", "aligned")}}
    return summary
