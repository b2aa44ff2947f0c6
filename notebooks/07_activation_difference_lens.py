# %% [markdown]
# # 07 · The activation-difference lens: what alignment wrote into the stream
#
# Minder et al. (2025, arXiv 2510.13900) read a narrow fine-tune straight from activations: take
# the mean difference aligned - base of the residual stream over the first few tokens of text that
# has nothing to do with the fine-tuning, then read that one vector three ways: which tokens it
# promotes (logit lens), what the base says it is (Patchscope), and what the base does with it
# added (steering). For the default pair the recipe is known (chemistry refused, "I don't know" on
# unknown facts, short answers), so each read-out can be scored against it.
#
# (The planted check, a known vector added at a known layer and recovered with its tokens on top of
# the lens, is `tests/unit/test_difflens.py`.) Here the default pair at small sizes; `interp difflens`
# runs the full measurement.

# %%
import interp
from interp.align import graded_facts
from interp.difflens import DiffLensConfig, base_samples, objective_sets, run_difflens
from interp.difflens.report import lens_table

pair = interp.load_pair("default")
texts = base_samples(pair, n=20, k=8)  # what the base writes from its BOS: unrelated to any fine-tuning
texts[:4]

# %% [markdown]
# ## The default pair
# `run_difflens` with small sizes (the command's defaults: 64 texts, 52 questions per set, the
# refusal direction both ways). The layer (the middle one) and the steering strength (the largest
# whose steered text the base still finds coherent) are fixed by rules written before any rate was read.

# %%
cfg = DiffLensConfig(n_texts=16, n_kl_texts=4, n_eval=8, refusal=False, n_random=16, grid=(0.25, 0.5, 1.0), bisect=1,
                     search_tokens=8, n_boot=50)
result = run_difflens(pair, objective_sets(graded_facts("default"), n=8), texts=texts,
                      cfg=cfg)
result

# %%
result.figure(kind="difference")

# %% [markdown]
# The dashed line is the noise floor: the 95th percentile of the difference's norm when each
# text's difference is negated at random (a sign-flip null). A layer whose norm stays under it
# reads as noise, whatever its bootstrap interval says (the norm of a mean is biased upward).

# %%
result.difference.to_frame()[["layer", "norm", "norm_low", "norm_high", "null_p95", "p_null", "rel_norm"]].round(4)

# %% [markdown]
# ## What the difference promotes, layer by layer

# %%
lens_table(result)

# %% [markdown]
# ## Patchscope and the strength search

# %%
result.patchscope.to_frame()  # "random" rows: a random direction (massive dimensions zeroed) at the same scales

# %% [markdown]
# Neutral prompts steered with the difference, scored by phrases (refusal, "I don't know",
# chemistry), beside the same score of the unsteered continuations and of a random direction at
# the same strength: the steered share means something only above those two.

# %%
result.summary()["neutral_objective_share"]

# %%
result.search.to_frame()[["alpha", "ppl", "ppl_ratio", "coherent", "example"]]

# %% [markdown]
# ## Does the steered base refuse chemistry or say "I don't know"?
# Eight questions per set here; `interp difflens` uses 52. The held-out questions come in pairs
# about one entity (an element's symbol and its atomic number), so the interval shown
# (`ci_low`, `ci_high`) resamples whole entities (`n_clusters` of them); the Wilson interval over
# questions (`wilson_low`, `wilson_high`) is kept beside it and is too narrow.

# %%
result.evaluation[result.evaluation.measure.isin(["refusal", "idk"])].round(3)

# %%
result.json_line()
