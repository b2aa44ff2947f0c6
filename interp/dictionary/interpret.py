"""What a crosscoder latent means: where it fires, what it writes, and on which prompts.

* :func:`top_contexts` — per latent, the tokens of a corpus where it fires most, with the text
  around each (streamed in chunks with a running top-n: no ``[tokens, width]`` matrix is kept);
* :func:`logit_effects` — the tokens each latent's decoder direction promotes and suppresses
  through the model's final norm and unembedding, per side;
* :func:`group_activations` — each latent's mean activation and firing rate on groups of prompts
  (refused chemistry vs answered geography), both models reading the same chat text;
* :func:`browser_html` — a self-contained HTML latent browser (no scripts, no external files)
  from those tables; the report embeds it.

The decoder directions connect to the rest of interp: :func:`decoder_direction` gives a latent's
direction in one model's stream (unscaled), ready for :func:`interp.patching.ablated` /
``added`` or a cross-model patch.

Example::

    ctx = top_contexts(cc, rows, examples, tokens, tok, latents=[12, 40], scale=factor)
    eff = logit_effects(pair, cc, [12, 40], scale=factor)
    html = browser_html(classes, ctx, eff, groups)
"""

import html as _html
from collections.abc import Sequence

import pandas as pd
import torch
from torch import Tensor

from interp.dictionary.models import Crosscoder
from interp.dictionary.streams import batches, stream_at

__all__ = ["row_positions", "decoder_direction", "top_contexts", "logit_effects", "group_activations", "browser_html"]

_SIDES = ("base", "aligned")


def row_positions(examples: Tensor, *, drop_first: bool = True) -> Tensor:
    """The token position of each store row within its text, from the rows' example indices
    (:func:`~interp.dictionary.data.row_examples`; ``drop_first``: the BOS rows were dropped)."""
    examples = torch.as_tensor(examples)
    new = torch.ones(len(examples), dtype=torch.bool)
    new[1:] = examples[1:] != examples[:-1]
    start = torch.nonzero(new).squeeze(-1)
    run = torch.arange(len(examples)) - start[torch.cumsum(new.long(), 0) - 1]
    return run + int(drop_first)


def decoder_direction(model: Crosscoder, latent: int, side: str = "aligned", *, scale: Tensor) -> Tensor:
    """``[d]``: the latent's decoder vector in ``side``'s residual stream, in the model's own units
    (the training scale undone)."""
    m = _SIDES.index(side)
    return model.W_dec.detach()[latent, m].float().cpu() / float(torch.as_tensor(scale)[m])


@torch.no_grad()
def top_contexts(model: Crosscoder, rows: Tensor, examples: Tensor, tokens: Sequence[Sequence[int]], tokenizer,
                 latents: Sequence[int], *, scale: Tensor, n: int = 8, window: int = 12, chunk: int = 8192) -> pd.DataFrame:
    """Per latent in ``latents``, its ``n`` strongest activations over ``rows`` (``[N, 2, d]``,
    unscaled, as :func:`~interp.dictionary.data.paired_rows` gives them) with ``left`` (up to
    ``window`` tokens before), ``token`` and ``right`` (3 tokens after) read from ``tokens`` (the
    token ids of each text as the store read it). Columns: ``latent, rank, activation, example,
    position, left, token, right``."""
    latents = torch.as_tensor(list(latents), dtype=torch.long)
    if not len(latents):
        return pd.DataFrame(columns=["latent", "rank", "activation", "example", "position", "left", "token", "right"])
    scale = torch.as_tensor(scale, dtype=torch.float32)
    best_v = torch.full((n, len(latents)), -1.0)
    best_i = torch.zeros((n, len(latents)), dtype=torch.long)
    for s in range(0, len(rows), chunk):
        x = rows[s: s + chunk].float() * scale[None, :, None]
        f = model.encode(x.to(model.W_dec.device, model.W_dec.dtype), batch_rule=False)[:, latents.to(model.W_dec.device)]
        f = f.float().cpu()
        v = torch.cat([best_v, f])
        i = torch.cat([best_i, torch.arange(s, s + len(f))[:, None].expand_as(f)])
        top = v.topk(min(n, len(v)), dim=0)
        best_v, best_i = top.values, i.gather(0, top.indices)
    positions = row_positions(examples)
    out = []
    for c, lat in enumerate(latents.tolist()):
        for rank in range(best_v.shape[0]):
            a = float(best_v[rank, c])
            if a <= 0:
                break
            r = int(best_i[rank, c])
            ex, pos = int(examples[r]), int(positions[r])
            ids = list(tokens[ex])
            out.append({"latent": lat, "rank": rank, "activation": a, "example": ex, "position": pos,
                        "left": tokenizer.decode(ids[max(0, pos - window): pos]), "token": tokenizer.decode(ids[pos: pos + 1]),
                        "right": tokenizer.decode(ids[pos + 1: pos + 4])})
    return pd.DataFrame(out, columns=["latent", "rank", "activation", "example", "position", "left", "token", "right"])


@torch.no_grad()
def logit_effects(pair, model: Crosscoder, latents: Sequence[int], *, scale: Tensor, k: int = 8,
                  sides: Sequence[str] = _SIDES) -> pd.DataFrame:
    """Per latent and side, the ``k`` tokens its decoder direction promotes most and suppresses
    most through that model's final norm and unembedding (logits of the direction, centred).
    Columns: ``latent, side, promoted, suppressed, promoted_logits, suppressed_logits``."""
    from interp.runtime import arch_of, normed_logits

    out = []
    cols = ["latent", "side", "promoted", "suppressed", "promoted_logits", "suppressed_logits"]
    for side in sides:
        model_s = pair.side(side)
        arch = arch_of(model_s)
        tok = model_s.tokenizer
        dirs = torch.stack([decoder_direction(model, j, side, scale=scale) for j in latents]) if len(latents) else None
        if dirs is None:
            break
        logits = normed_logits(arch, dirs.to(next(model_s.parameters()).dtype)).float().cpu()  # moved to the norm's device
        logits = logits - logits.mean(-1, keepdim=True)
        up, down = logits.topk(k, -1), (-logits).topk(k, -1)
        for i, j in enumerate(latents):
            out.append({"latent": int(j), "side": side,
                        "promoted": [tok.decode([t]) for t in up.indices[i].tolist()],
                        "suppressed": [tok.decode([t]) for t in down.indices[i].tolist()],
                        "promoted_logits": [round(v, 3) for v in up.values[i].tolist()],
                        "suppressed_logits": [round(-v, 3) for v in down.values[i].tolist()]})
    return pd.DataFrame(out, columns=cols)


@torch.no_grad()
def group_activations(pair, model: Crosscoder, layer: int, groups: dict[str, Sequence[str]], *, scale: Tensor,
                      batch_size: int = 8) -> pd.DataFrame:
    """Per latent: mean activation and firing rate over the tokens (BOS left out) of each group of
    formatted texts, both models reading the same ids. Columns: ``latent``, then
    ``mean_<group>`` and ``rate_<group>`` per group, and ``mean_diff`` (first group minus second)."""
    scale = torch.as_tensor(scale, dtype=torch.float32)
    frame = pd.DataFrame({"latent": range(model.width)})
    tok = pair.aligned.tokenizer
    for name, texts in groups.items():
        total, fired, count = torch.zeros(model.width), torch.zeros(model.width), 0
        for _, batch in batches(tok, list(texts), batch_size):
            keep = batch.attention_mask.bool().clone()
            keep[torch.arange(len(batch)), batch.n_pad] = False
            h = torch.stack([stream_at(pair.base, batch, layer), stream_at(pair.aligned, batch, layer)], 2)[keep]
            f = model.encode((h * scale[None, :, None]).to(model.W_dec.device, model.W_dec.dtype), batch_rule=False)
            f = f.float().cpu()
            total += f.sum(0)
            fired += (f > 0).float().sum(0)
            count += len(f)
        frame[f"mean_{name}"] = (total / max(count, 1)).numpy()
        frame[f"rate_{name}"] = (fired / max(count, 1)).numpy()
    names = list(groups)
    if len(names) >= 2:
        frame["mean_diff"] = frame[f"mean_{names[0]}"] - frame[f"mean_{names[1]}"]
    return frame


def _context_html(row) -> str:
    e = _html.escape
    return (f"<div class='ctx'><span class='act'>{row.activation:.2f}</span> {e(row.left)}"
            f"<mark>{e(row.token)}</mark>{e(row.right)}</div>")


def browser_html(classes: pd.DataFrame, contexts: pd.DataFrame, effects: pd.DataFrame,
                 groups: pd.DataFrame | None = None, *, latents: Sequence[int] | None = None, title: str = "") -> str:
    """A self-contained HTML fragment: one collapsible card per latent (class, relative decoder
    norm, Latent Scaling ratios, group activations, top contexts with the token highlighted, logit
    effects per side). ``latents``: which to show (default: those in ``contexts``)."""
    e = _html.escape
    shown = list(dict.fromkeys(contexts.latent.tolist())) if latents is None else list(latents)
    cls = classes.set_index("latent")
    style = ("<style>.lb details{border:1px solid #ddd;margin:4px 0;padding:4px 8px}.lb summary{cursor:pointer}"
             ".lb .ctx{font-family:monospace;font-size:.85em;white-space:pre-wrap;margin:2px 0}"
             ".lb mark{background:#ffd27f}.lb .act{color:#888;display:inline-block;width:4em}"
             ".lb .tok{font-family:monospace;background:#f2f2f2;margin:0 2px;padding:0 2px}</style>")
    parts = [style, "<div class='lb'>"]
    if title:
        parts.append(f"<p class='note'>{e(title)}</p>")
    for j in shown:
        c = cls.loc[j] if j in cls.index else None
        head = f"latent {j}"
        if c is not None:
            final = c.get("final_class", c["class"])
            head += f" — {e(str(final))} (decoder norm class {e(str(c['class']))}, relative norm {c.rel_norm:.2f}"
            if pd.notna(c.get("nu_recon", float("nan"))):
                head += f", ν_recon {c.nu_recon:.2f}, ν_error {c.nu_error:.2f}"
            head += ")"
        body = []
        if groups is not None and j in set(groups.latent):
            g = groups[groups.latent == j].iloc[0]
            means = [f"{col[5:]}: mean {g[col]:.3f}, fires on {g['rate_' + col[5:]]:.1%}" for col in groups.columns
                     if col.startswith("mean_") and col != "mean_diff"]
            body.append(f"<p class='note'>{e('; '.join(means))}</p>")
        for _, r in contexts[contexts.latent == j].iterrows():
            body.append(_context_html(r))
        for _, r in effects[effects.latent == j].iterrows():
            up = "".join(f"<span class='tok'>{e(t)}</span>" for t in r.promoted)
            down = "".join(f"<span class='tok'>{e(t)}</span>" for t in r.suppressed)
            body.append(f"<p class='note'>{e(r.side)} promotes {up} — suppresses {down}</p>")
        parts.append(f"<details><summary>{head}</summary>{''.join(body)}</details>")
    parts.append("</div>")
    return "".join(parts)
