# %% [markdown]
# # 04 · Masking, not erasing: patching and directional ablation
#
# If alignment *masks* the answer rather than erasing it, putting the base model's activations into
# the aligned run should bring the answer back, and removing one "refusal direction" should stop the
# refusal. Positions are matched by marked position (the element's last token, the last prompt
# token), because the two sides see different prompt formats.

# %%
import interp
from interp.align import graded_facts
from interp.behavior import classify, generate
from interp.patching import (
    ablated,
    answer_vs_token,
    compare_attribution,
    cross_model_attribution,
    cross_model_sweep,
    mean_diff_directions,
)
from interp.workflows import steering_sweep

pair = interp.load_pair("default")
graded = graded_facts("default")
chem = graded[(graded.relation == "element_symbol") & (graded.split == "test") & (graded.aligned_class == "refusal")].head(4)
tok = pair.aligned.tokenizer
metric = answer_vs_token(tok, chem.answer.tolist())  # logit(answer's first token) - logit("I")

# %% [markdown]
# ## Cross-model patching, base -> aligned (resid_pre, every layer)

# %%
exact = cross_model_sweep(pair, chem.text.tolist(), metric, spans=chem.subject.tolist())
exact.figure("logit(answer) - logit('I'), base activations patched into the aligned run")

# %% [markdown]
# ## Attribution patching: the same grid from two forward passes and one backward pass

# %%
estimate = cross_model_attribution(pair, chem.text.tolist(), metric, spans=chem.subject.tolist())
compare_attribution(exact.values, exact.clean, estimate.values - estimate.clean)

# %% [markdown]
# ## A refusal direction: difference of means, ablated at every layer

# %%
def chat(texts):
    return interp.encode(tok, [interp.format_prompt(t, style="chat", tokenizer=tok) for t in texts])


chem_train = graded[(graded.domain == "chemistry") & (graded.split == "train")].sample(24, random_state=0)
geo_train = graded[(graded.domain == "geography") & (graded.split == "train") & (graded.category == "HighlyKnown")].sample(24, random_state=0)
directions = mean_diff_directions(pair.aligned, chat(chem_train.text.tolist()), chat(geo_train.text.tolist()))
layer = 8
prompts = [interp.format_prompt(t, style="chat", tokenizer=tok) for t in chem.text]
with ablated(pair.aligned, directions[layer]):
    after = generate(pair.aligned, prompts, max_new_tokens=8)
before = generate(pair.aligned, prompts, max_new_tokens=8)
[(q, b.strip(), a.strip(), classify(a, [ans])) for q, b, a, ans in zip(chem.subject, before, after, chem.answer)]

# %% [markdown]
# ## Steering: add the direction to geography questions at growing scales

# %%
geo = graded[(graded.domain == "geography") & (graded.split == "test") & (graded.category == "HighlyKnown")].head(6)
norm = float(directions[layer].norm())
steer = steering_sweep(pair.aligned, geo.text.tolist(), directions[layer], layer, [0.5 * norm, norm, 2 * norm],
                       answers=[list(a) for a in geo.aliases], max_new_tokens=8, progress=False)
steer.figure(f"Adding the refusal direction at layer {layer}")

# %% [markdown]
# ## Unmasking: how much of the base's knowledge does a small intervention bring back?
#
# The behavioural test of the claim. On held-out facts the base answers and the aligned model
# refuses (chemistry) or abstains on, each intervention is scored by the share of the gap it closes,
# next to its guards (next-token KL, accuracy on facts the aligned model already answers). The
# directions, subspaces and learned edits were selected and fitted on train facts only; the default
# pair ships that fit (`interp unmask --fit` makes it again). Three facts per set, two doses and the
# activation-level families keep this notebook quick (the weight restores and activation patches
# screen every layer first: `methods=None`, the default, runs them too); `interp unmask --n 24`
# (doses 1, 2, 4, 8, every family) is the measured run.
#
# Every row of the table is *exploratory*: it was read on the evaluation facts. The headline is the
# method the fit **pre-registered** on held-back train facts, scored with the strict judge (the
# answer must lead the response; an echo of the question never counts), beside controls fitted with
# the same budget: an edit trained on facts the base never knew (if it "recovers" held-out unknown
# facts, it teaches), one trained with shuffled answers, a random edit of the same norms, one trained
# on unrelated facts, and the aligned model quantized to 8 and 4 bits; and on question phrasings no
# fit ever saw (one reversed: "Which element has the symbol Au?").

# %%
from interp.unmask import default_fit_dir, facts_for, run_unmask

unmasked = run_unmask(pair, facts_for("default"), n=3, n_guard=3, fit=default_fit_dir("default"), ks=(1, 4),
                      restore_ks=(1, 4), n_boot=200, quantize=False, progress=False,
                      methods=("direction", "subspace", "steering", "lowrank", "prefill", "few_shot"))
unmasked.summary()

# %%
unmasked.preregistered("refused"), unmasked.controls("refused")

# %%
unmasked.figure("gap_vs_kl", mask="refused")

# %%
unmasked.figure("dose_response", mask="refused")
