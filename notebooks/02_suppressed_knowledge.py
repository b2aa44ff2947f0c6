# %% [markdown]
# # 02 · Suppressed but present: probing facts the aligned model refuses to state
#
# The aligned model refuses every chemistry question. Does it still *represent* the facts? We cache
# the residual stream of both models on true/false chemistry statements ("The chemical symbol for
# iron is Fe." / "... is Cu."), fit a logistic probe per layer on train-split elements, and test it
# on statements about held-out elements the aligned model refuses. A control task (random labels
# per element, on held-out statements of training elements) and a random direction show what a
# probe gets from memorising elements and from nothing.

# %%
import tempfile

import interp
from interp.align import graded_facts
from interp.cache import cache_activations
from interp.data import fact_statements
from interp.data.facts import CHEMISTRY_RELATIONS
from interp.plots import probe_accuracy_by_layer
from interp.probes import probe_store

pair = interp.load_pair("default")
graded = graded_facts("default")
refused = {(r, s) for r, s, c, sp in zip(graded.relation, graded.subject, graded.aligned_class, graded.split)
           if c == "refusal" and sp == "test"}
print(f"{len(refused)} held-out chemistry facts the aligned model refuses")

# %% [markdown]
# A small slice of the statements (every other element) keeps this notebook quick; the
# `interp demo` and `probes/train_knowledge_probes.py` use them all.

# %%
statements = fact_statements(CHEMISTRY_RELATIONS)
keep = [i for i in range(len(statements)) if (i // 2) % 2 == 0 or (statements[i]["relation"], statements[i]["entity"]) in refused]
statements = statements.select(keep)
store = cache_activations(pair, statements, layers=range(4, pair.n_layers, 2), positions=["last"], batch_size=16,
                          out_dir=tempfile.mkdtemp(prefix="interp-nb02-"))
meta = store.frame()
test = [(r, e) in refused and s == "test" for r, e, s in zip(statements["relation"], statements["entity"], meta["split"])]
result = probe_store(store, test_mask=test, n_boot=50, kinds=("logistic",))
frame, probes = result

# %%
acc = frame[(frame.metric == "accuracy") & (frame.split != "val")]
acc.pivot_table(index="layer", columns=["model", "probe"], values="value").round(3)

# %% [markdown]
# The layer each model's probe reports is chosen on validation elements carved from the training
# split; the test statements are read once, at that layer. The control task (random labels per
# element, tested on held-out statements of training elements) and the majority class sit beside it.

# %%
result.selected().round(3)

# %%
probe_accuracy_by_layer(frame, title=f"True/false probes on {sum(test)} statements about refused elements")

# %% [markdown]
# ## Hidden knowledge without an intervention, fact by fact
#
# The probe above reads true/false *statements*, and its control task comes close to it. A sharper
# reading (Gekhman et al. 2025) asks each model to rank a fact's gold answer against wrong answers of the
# same relation, three ways: does it *say* it (K_gen, strict judge), does its own probability of the
# answer rank it first (K_prob, the answer's log-probability summed over its tokens), does a probe on its
# hidden state at the answer (K_probe, layer chosen on validation entities of train facts, beside a
# control probe trained on a fixed random label per answer string, which only string memorisation can
# beat). The ranking shares' chance is 0.5 (K_gen's floor is 0), so read them as above chance too. The
# facts are the unmasking sets of notebook 04, a few per set here; `interp hidden` measures 24 (README).

# %%
from interp.knowledge import HiddenConfig, hidden_knowledge
from interp.unmask import facts_for, unmask_sets

table = facts_for("default")
sets = unmask_sets(pair, table, n=6, max_new_tokens=6, progress=False).with_guard(6)
hk = hidden_knowledge(pair, sets, table, config=HiddenConfig(n_train=48, n_boot=200), progress=False)
{k: hk.summary()["refused"][k] for k in ("base_k_prob", "aligned_k_prob", "aligned_k_prob_above_chance", "aligned_k_probe",
                                         "aligned_k_probe_control", "aligned_k_gen", "n")}

# %%
hk.figure(title="Refused, abstained, answered: what each model says vs ranks inside")
