# %% [markdown]
# # 05 · Knowledge and popularity ("noisy nudge")
#
# Facts that are rare in pretraining data are not learned. The alignment recipe graded every fact
# for the base model into SliCK categories (Gekhman et al. 2024: HighlyKnown / MaybeKnown /
# WeaklyKnown / Unknown, from greedy and sampled answers under several few-shot prompts). Here the
# categories meet a popularity measure: the population of the country or city the fact is about.

# %%
import interp
from interp.align import graded_facts
from interp.diffing import grade_pair, knowledge_by_popularity
from interp.plots import popularity_curves

graded = graded_facts("default")
facts = graded[graded.popularity > 0].reset_index(drop=True)
base = knowledge_by_popularity(facts.assign(model="base"), n_bins=10)
base.fits.round(3)

# %%
base.figure("SliCK categories by population decile, base model")

# %% [markdown]
# ## What the aligned model *says*, by popularity
# On held-out facts, the aligned model answers, says "I don't know." or refuses. The share of
# correct answers follows popularity; "I don't know." takes the rare end.

# %%
held = facts[facts.split == "test"].copy()
held["decile"] = held.popularity.rank(pct=True).mul(5).clip(upper=4.999).astype(int)
held.groupby("decile").aligned_class.value_counts(normalize=True).unstack(fill_value=0).round(2)

# %% [markdown]
# ## Grading the aligned model too (a small sample here; `interp knowledge` grades them all)

# %%
pair = interp.load_pair("default")
sample = facts[facts.relation == "city_country"].sample(40, random_state=0).reset_index(drop=True)
both = grade_pair(pair, sample, known={"base": sample.category}, progress=False)
result = knowledge_by_popularity(both, n_bins=4)
result.fits.round(3)

# %%
popularity_curves(result, title="P(known) against log10 population, base and aligned")
