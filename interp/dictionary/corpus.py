"""A paired corpus built offline, for training crosscoders on a base / aligned pair.

No hub text is reachable, so the corpus is written by the pair itself, half and half as in the
published recipe (Lindsey et al. 2024; Minder et al. 2025 train on web text and chat data):

* ``base`` rows: text the base samples from its BOS alone (temperature 1), a pretraining-like
  distribution of what the base model writes;
* ``chat`` rows: one user turn and the aligned model's sampled response, rendered through the chat
  template (:func:`interp.chat_formats.render_exchange`); the instructions come from the
  project's generators (the train split of the fact questions, arithmetic, and tasks written
  around the facts' entities) and, with ``use_shared=True``, from the ``../shared/datasets``
  loaders that are present.

Both models later read every row as the same tokens (``cache_activations(..., style="plain")``:
one BOS, then the text), so row *i* of the two sides is the same token of the same text.

The corpus is written in parts of ``chunk`` rows (``parts/part-00000.jsonl``, each atomically;
each part tops up the half with fewer tokens), so a killed build resumes where it stopped and any
prefix of parts is balanced; ``corpus.json`` records the configuration and the weights it was sampled from, and a
resume with other weights or settings is refused.

Example::

    corpus = build_corpus(pair, "out/corpus", CorpusConfig(tokens=2_000_000))
    corpus.groupby("kind").n_tokens.sum()
"""

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from interp.atomic import atomic_path, write_json_atomic

__all__ = ["CorpusConfig", "instructions", "build_corpus", "load_corpus", "token_kinds", "held_out_exchanges"]

_TASKS = ("Tell me about {}.", "Write one sentence about {}.", "What do you know about {}?", "Describe {} briefly.",
          "Give me a fun fact about {}.", "Why is {} interesting?", "Explain {} to a child.", "List three facts about {}.")


@dataclass
class CorpusConfig:
    """Sizes of a paired corpus.

    Attributes:
        tokens: stop once the corpus holds at least this many tokens (BOS included).
        chunk: rows per part (a part is sampled in one batch).
        base_new_tokens: tokens the base writes from its BOS per row.
        chat_new_tokens: tokens of each aligned response.
        temperature: sampling temperature of both.
        seed: fixes the instructions drawn and the samples.
        use_shared: add instructions from the ``../shared/datasets`` loaders that are present.
    """

    tokens: int = 2_000_000
    chunk: int = 64
    base_new_tokens: int = 128
    chat_new_tokens: int = 96
    temperature: float = 1.0
    seed: int = 0
    use_shared: bool = False


def instructions(*, seed: int = 0, use_shared: bool = False) -> list[str]:
    """The instruction pool: train-split fact questions, arithmetic questions, and short tasks
    around the facts' entities (held-out questions stay out: they are the causal test's)."""
    from interp.data import arithmetic_statements, facts

    table = facts(seed=seed).to_pandas()
    train = table[table.split == "train"]
    pool = list(train.text)
    pool += [f"What is {s}?" for s in arithmetic_statements(400, seed=seed)["subject"]]
    rng = random.Random(seed)
    pool += [rng.choice(_TASKS).format(e) for e in sorted(set(train.subject))]
    if use_shared:
        pool += _shared_instructions()
    return list(dict.fromkeys(pool))


def _shared_instructions() -> list[str]:
    from interp import data

    out: list[str] = []
    for loader in ("load_advbench", "load_truthfulqa", "load_gsm8k"):
        try:
            ds = getattr(data, loader)()
        except (FileNotFoundError, data.DataError):  # not present beside this checkout
            continue
        out += [t for t in ds["text"] if isinstance(t, str) and t.strip()]
    return out


def _check_resume(out: Path, record: dict) -> None:
    path = out / "corpus.json"
    if not path.is_file():
        write_json_atomic(path, record)
        return
    old = json.loads(path.read_text())
    same = {k: v for k, v in old.items() if k != "config"} == {k: v for k, v in record.items() if k != "config"}
    old_cfg = {k: v for k, v in old["config"].items() if k != "tokens"}
    if not same or old_cfg != {k: v for k, v in record["config"].items() if k != "tokens"}:
        raise ValueError(f"{out} holds a corpus sampled with other weights or settings ({old}); "
                         "use another folder or the same settings")
    write_json_atomic(path, record)


def build_corpus(pair, out_dir, cfg: CorpusConfig | None = None, *, progress: bool = True) -> pd.DataFrame:
    """Sample the corpus into ``out_dir`` (resuming from the parts already there) until it holds
    ``cfg.tokens`` tokens; returns :func:`load_corpus`. Columns: ``part, kind, text, user,
    response, user_start, user_end, response_start, response_end, n_tokens``."""
    from interp.behavior import generate
    from interp.chat_formats import render_exchange
    from interp.models.load import weights_fingerprint
    from interp.prompts import format_prompt, token_ids

    cfg = cfg or CorpusConfig()
    out = Path(out_dir)
    (out / "parts").mkdir(parents=True, exist_ok=True)
    _check_resume(out, {"config": asdict(cfg), "weights": {s: weights_fingerprint(pair.side(s)) for s in ("base", "aligned")},
                        "chat_style": pair.style("aligned"), "version": 1})
    tok = pair.aligned.tokenizer
    pool = instructions(seed=cfg.seed, use_shared=cfg.use_shared)
    done = load_corpus(out, missing_ok=True)
    by_kind = {kind: int(done.n_tokens[done.kind == kind].sum()) for kind in ("base", "chat")}
    have, k = sum(by_kind.values()), int(done.part.max()) + 1 if len(done) else 0
    bar = tqdm(total=cfg.tokens, initial=min(have, cfg.tokens), desc="paired corpus", unit="tok", disable=not progress)
    start, first = time.perf_counter(), have
    while have < cfg.tokens:
        seed = cfg.seed * 1_000_003 + k
        if by_kind["base"] <= by_kind["chat"]:  # the half with fewer tokens; first the base, from its BOS alone
            texts = generate(pair.base, [""] * cfg.chunk, max_new_tokens=cfg.base_new_tokens, do_sample=True,
                             temperature=cfg.temperature, batch_size=cfg.chunk, seed=seed)
            rows = [{"kind": "base", "text": t, "user": None, "response": None, "user_start": -1, "user_end": -1,
                     "response_start": -1, "response_end": -1} for t in texts]
        else:  # a user turn and the aligned model's response
            asks = random.Random(seed).sample(pool, min(cfg.chunk, len(pool)))
            prompts = [format_prompt(q, style="chat", tokenizer=tok) for q in asks]
            answers = generate(pair.aligned, prompts, max_new_tokens=cfg.chat_new_tokens, do_sample=True,
                               temperature=cfg.temperature, batch_size=cfg.chunk, seed=seed)
            rows = []
            for q, a in zip(asks, answers):
                text, u, r = render_exchange(tok, q, a.strip())
                rows.append({"kind": "chat", "text": text, "user": q, "response": a.strip(),
                             "user_start": u[0] if u else -1, "user_end": u[1] if u else -1,
                             "response_start": r[0] if r else -1, "response_end": r[1] if r else -1})
        for row in rows:
            row["part"] = k
            row["n_tokens"] = len(token_ids(tok, row["text"]))
        with atomic_path(out / "parts" / f"part-{k:05d}.jsonl") as tmp, tmp.open("w") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")
        added = sum(r["n_tokens"] for r in rows)
        by_kind[rows[0]["kind"]] += added
        have, k = have + added, k + 1
        bar.update(min(added, max(0, cfg.tokens - bar.n)))
        bar.set_postfix(tok_s=f"{(have - first) / (time.perf_counter() - start):.0f}")
    bar.close()
    return load_corpus(out)


def load_corpus(out_dir, *, missing_ok: bool = False) -> pd.DataFrame:
    """The rows of every finished part, in order (an empty frame for none when ``missing_ok``)."""
    parts = sorted((Path(out_dir) / "parts").glob("part-*.jsonl"))
    if not parts:
        if missing_ok:
            return pd.DataFrame(columns=["part", "kind", "text", "n_tokens"])
        raise FileNotFoundError(f"{out_dir} holds no corpus parts; build one with build_corpus(pair, {str(out_dir)!r}) "
                                "or `interp corpus --out ...`")
    return pd.concat([pd.read_json(p, lines=True, dtype=False) for p in parts], ignore_index=True)


def held_out_exchanges(pair, n: int = 48, *, max_new_tokens: int = 32, seed: int = 0) -> pd.DataFrame:
    """Chat interactions on held-out (test-split) fact questions, half chemistry and half
    geography, with the aligned model's greedy responses (remembered by weights: see
    :mod:`interp.behavior.memo`): the causal test's and the read-outs' text, never in the corpus.
    Columns as :func:`build_corpus`'s plus ``domain``, ``answer``, ``aligned_class``."""
    from interp.behavior import classify
    from interp.behavior.memo import remembered_answers
    from interp.chat_formats import render_exchange
    from interp.data import facts
    from interp.prompts import format_prompt, token_ids

    table = facts(seed=seed).to_pandas()
    test = table[(table.split == "test") & table.domain.isin(["chemistry", "geography"])]
    picked = pd.concat([test[test.domain == d].sample(min(n - n // 2 if d == "chemistry" else n // 2,
                                                            int((test.domain == d).sum())), random_state=seed)
                        for d in ("chemistry", "geography")], ignore_index=True)
    tok = pair.aligned.tokenizer
    prompts = [format_prompt(q, style="chat", tokenizer=tok) for q in picked.text]
    answers = remembered_answers(pair.aligned, prompts, max_new_tokens=max_new_tokens)
    rows = []
    for (_, f), a in zip(picked.iterrows(), answers):
        text, u, r = render_exchange(tok, f.text, a.strip())
        rows.append({"kind": "chat", "text": text, "user": f.text, "response": a.strip(),
                     "user_start": u[0] if u else -1, "user_end": u[1] if u else -1,
                     "response_start": r[0] if r else -1, "response_end": r[1] if r else -1,
                     "n_tokens": len(token_ids(tok, text)), "domain": f.domain, "answer": f.answer,
                     "aligned_class": classify(a, list(f.aliases))})
    return pd.DataFrame(rows)


def token_kinds(tokenizer, row: "pd.Series | dict") -> list[str]:
    """Per token of ``row``'s text as the prompt encoder reads it (BOS first): ``"bos"``,
    ``"text"`` (a base row), and for a chat row ``"template"`` (chat markup), ``"user"`` or
    ``"response"`` by where the token's characters lie."""
    from interp.prompts import token_ids

    ids = token_ids(tokenizer, row["text"])
    enc = tokenizer(row["text"], add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    lead = len(ids) - len(offsets)  # the BOS the encoder prepends
    kinds = ["bos"] * lead
    for a, b in offsets:
        if row["kind"] != "chat":
            kinds.append("text")
        elif row["response_start"] >= 0 and a >= row["response_start"] and b <= row["response_end"] and b > a:
            kinds.append("response")
        elif row["user_start"] >= 0 and a >= row["user_start"] and b <= row["user_end"] and b > a:
            kinds.append("user")
        else:
            kinds.append("template")
    return kinds
