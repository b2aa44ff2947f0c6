# %% [markdown]
# # 06 · Feature-level diffing with a crosscoder
#
# A crosscoder reads the same token in the base and the aligned model into one sparse latent
# space (Lindsey et al. 2024). Each latent has a decoder per model: its relative decoder norm says
# whether it is base-only, aligned-only or shared. Latent Scaling (Minder et al. 2025) checks the
# model-specific ones: if the other model's activations carry the same direction where the latent
# fires, the latent is an artefact of the sparsity penalty and is re-classed shared.
#
# First on planted ground truth, where the answer is known; then on the default pair, with the
# crosscoder shipped beside its adapter (trained by `interp dictionary --corpus` on a paired corpus
# the pair wrote itself: `interp corpus`).

# %%
import torch

from interp.dictionary import (
    Crosscoder, PlantedData, TrainConfig, latent_classes, latent_scaling, planted_benchmark, reconstruction_stats,
    train_dictionary,
)

planted = planted_benchmark(PlantedData(d_model=32, n_features=48, seed=3),
                            cfg=TrainConfig(steps=1500, lr=2e-3, warmup=50, dead_after=20_000, aux_k=16))
planted

# %% [markdown]
# ## The default pair's crosscoder
# `shipped_crosscoder()` is the folder in sae-lens's layout; its config records the layer, the
# input scales it was trained with, the corpus and the held-out statistics.

# %%
import interp
from interp.dictionary.explain import explain_crosscoder
from interp.dictionary.io import load_dictionary, shipped_crosscoder

pair = interp.load_pair("default")
cc = load_dictionary(shipped_crosscoder("default"))
{k: cc.cfg[k] for k in ("hook_name", "d_sae", "k", "held_out", "corpus")}

# %% [markdown]
# ## Latent classes, Latent Scaling, and the causal test
# `explain_crosscoder` classes the latents (Latent Scaling on held-out chat interactions), runs the
# causal test on them (the aligned model's stream at the layer replaced by the base's plus the
# decoded difference of a latent set and of the decoder biases: how much of the next-token KL does
# each set close?) and reads out the latents worth a look. "Every latent" checks the dictionary's
# fidelity to the difference (what is left is the difference of the two reconstruction errors); a
# smaller set's share is not its contribution ("bias only" moves the stream away from the aligned
# model, and latents outside a set are zeroed). A few interactions here; `interp demo` runs 48, and
# `interp dictionary --read` reads a crosscoder again on a fresh corpus.

# %%
found = explain_crosscoder(pair, cc, layer=cc.cfg["hook_layer"], scale=cc.cfg["input_scale"], n_exchanges=8,
                           n_random=1, n_boot=100, progress=False)
found

# %%
found.classes.groupby(["class", "final_class"]).size().rename("latents").reset_index()

# %%
found.figure("classes")

# %%
found.causal[found.causal.kind == "all"][["set", "n_latents", "tokens", "closed", "closed_low", "closed_high"]].round(3)

# %%
found.figure("causal")

# %% [markdown]
# ## The latents worth a look: contexts and logit effects
# The browser below is self-contained HTML (the report embeds the same); a latent's decoder
# direction in either model is `decoder_direction(cc, j, side, scale=...)`, ready for the steering
# and ablation hooks of `interp.patching`.

# %%
from IPython.display import HTML  # noqa: E402

HTML(found.browser())

# %%
cols = ["latent", "final_class", "rel_norm", "mean_refused_chemistry", "mean_answered_geography"]
found.shown.merge(found.classes[[c for c in cols if c in found.classes]], on="latent").round(3)
