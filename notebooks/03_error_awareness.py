# %% [markdown]
# # 03 · Error awareness: does the residual stream register that an answer is wrong?
#
# Arithmetic statements, half of them wrong ("48 - 71 = -33"). A probe per layer reads the last
# token; the output-confidence baseline is the model's own log-probability of the shown result
# given the left-hand side. If the probe beats the baseline, the model "knows" more about the error
# than its output distribution shows (Orgad et al. 2024).

# %%
import tempfile

import torch

import interp
from interp.behavior import answer_logprobs
from interp.cache import cache_activations
from interp.data import arithmetic_statements
from interp.probes import auroc, probe_store, selected_layers

pair = interp.load_pair("default")
statements = arithmetic_statements(240, digits=(1, 2))
store = cache_activations(pair.base, statements, layers=range(2, pair.n_layers, 3), positions=["last"], batch_size=16,
                          out_dir=tempfile.mkdtemp(prefix="interp-nb03-"))
frame, _ = probe_store(store, n_boot=50, kinds=("logistic",))
probe_auroc = frame[(frame.metric == "auroc") & (frame.probe == "logistic") & (frame.split == "test")][["layer", "value", "ci_low", "ci_high"]]
probe_auroc.round(3)

# %% [markdown]
# ## The output-confidence baseline
# The base model's mean log-probability of the result tokens after "a op b =", on the same test rows.

# %%
test = statements.filter(lambda r: r["split"] == "test")
lhs = [t[: t.rindex("=") + 1] for t in test["text"]]
shown = [" " + t[t.rindex("=") + 1:].strip() for t in test["text"]]
batch = interp.encode(pair.base.tokenizer, lhs, answers=shown)
mean_lp, min_lp = answer_logprobs(pair.base, batch)
y = torch.tensor(test["label"])
baseline = float(auroc(mean_lp[None], y)[0])
# The probe's layer is chosen on validation problems carved from the training split, never on these test rows.
chosen = selected_layers(frame, metric="auroc").iloc[0]
print(f"output confidence AUROC {baseline:.3f}; probe AUROC {chosen.auroc:.3f} (95% CI {chosen.ci_low:.3f}-{chosen.ci_high:.3f}) "
      f"at layer {int(chosen.layer)}, chosen on validation problems")

# %% [markdown]
# Read the two numbers above side by side, the probe's with its interval. On the 270M default base,
# single-step arithmetic statements are a hard case: at these sizes the probe's interval is wide, so
# check whether it lies above the output-confidence baseline before reading a gap into the two
# numbers (the documentation's probes page, `docs/capabilities/probes.md`, renders the full-size
# statements probe, and the probe against output confidence on the models' own answers). The
# comparison, not a fixed conclusion, is the point of this notebook: run it on a larger pair
# (`interp.load_pair("gemma-2-2b")` with internet access) to see whether the gap opens.
