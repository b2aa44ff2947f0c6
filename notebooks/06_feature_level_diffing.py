# %% [markdown]
# # 06 · Feature-level diffing with a crosscoder
#
# A crosscoder reads the same token in the base and the aligned model into one sparse latent
# space (Lindsey et al. 2024). Each latent has a decoder per model: its relative decoder norm says
# whether it is base-only, aligned-only or shared. Latent Scaling (Minder et al. 2025) checks the
# model-specific ones: if the other model's activations carry the same direction where the latent
# fires, the latent is an artefact of the sparsity penalty and is re-classed shared.
#
# First on planted ground truth, where the answer is known; then on the default pair at small size
# (a few thousand tokens; the artefact the issue asks for needs millions).

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
# ## The default pair: the same chat-formatted text in both models
# `cache_activations(..., style="chat")` formats every side with the chat template, so row *i*
# of both sides is the same token; `positions=["all"]` keeps every token.

# %%
import interp
from interp.cache import cache_activations
from interp.data import facts
from interp.dictionary.data import paired_batches, paired_rows, row_examples, scale_factors

pair = interp.load_pair("default")
table = facts(n_cities=100).to_pandas()
table = table[table.split == "test"]
chem, geo = table[table.domain == "chemistry"].head(40), table[table.domain == "geography"].head(80)
texts = chem.text.tolist() + geo.text.tolist()
import tempfile  # noqa: E402

store = cache_activations(pair, texts, layers=[9], positions=["all"], style="chat",
                          out_dir=tempfile.mkdtemp(), progress=False)
rows = paired_rows(store, 9)  # every token but each text's first (BOS, the attention sink)
rows.shape

# %%
torch.manual_seed(0)
factor = scale_factors(rows)
cc = Crosscoder(rows.shape[-1], width=512, n_models=2, k=16)
history = train_dictionary(cc, paired_batches(rows, 256, scale=factor), TrainConfig(steps=300, lr=1e-3, warmup=30),
                           progress=False)
x = rows.float() * factor[None, :, None]  # every token, in store order, scaled as in training
held = [x]
reconstruction_stats(cc, held)  # on the training tokens (a few thousand: this is a demonstration)

# %% [markdown]
# ## Latent classes, before and after Latent Scaling

# %%
classes = latent_scaling(cc, held, latent_classes(cc))
classes.groupby(["class", "final_class"]).size().rename("latents").reset_index()

# %%
from interp.plots import latent_class_histogram  # noqa: E402

latent_class_histogram(classes, title="Crosscoder latents by relative decoder norm (default pair, layer 9)")

# %% [markdown]
# ## Which latents fire on the chemistry questions the aligned model refuses?
# Mean activation per latent over the tokens of chemistry vs geography prompts (both models read
# the same chat text), with each latent's class.

# %%
import pandas as pd  # noqa: E402

per_row = row_examples(store)  # example index of each row
with torch.no_grad():
    f = cc.encode(x, batch_rule=False)
is_chem = per_row < len(chem)
frame = pd.DataFrame({"latent": range(cc.width), "chemistry": f[is_chem].mean(0).numpy(),
                      "geography": f[~is_chem].mean(0).numpy()}).merge(classes[["latent", "final_class", "rel_norm"]])
frame.assign(diff=frame.chemistry - frame.geography).sort_values("diff", ascending=False).head(8).round(3)
