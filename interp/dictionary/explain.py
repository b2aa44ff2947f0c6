"""A trained crosscoder, read: latent classes after Latent Scaling, the causal test, and the
latents worth looking at with their contexts, logit effects and group activations — one result
(:class:`CrosscoderFindings`) with the result protocol, and its report section.

Example::

    cc = load_dictionary(shipped_crosscoder("default"))     # data/aligned/default/crosscoder
    found = explain_crosscoder(pair, cc, layer=cc.cfg["hook_layer"], scale=cc.cfg["input_scale"])
    found.summary(); found.figure("causal"); found.browser()
"""

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor

from interp.dictionary.analysis import latent_classes, latent_scaling
from interp.dictionary.causal import causal_closure, default_sets
from interp.dictionary.interpret import browser_html, group_activations, logit_effects, top_contexts
from interp.dictionary.models import Crosscoder
from interp.results import Result

__all__ = ["CrosscoderFindings", "explain_crosscoder", "add_dictionary_section"]


@dataclass(repr=False)
class CrosscoderFindings(Result):
    """What :func:`explain_crosscoder` found. ``classes``: one row per latent (decoder norms,
    class, Latent Scaling ratios, final class, group activations); ``causal``: the causal test;
    ``contexts`` / ``effects``: the shown latents' top contexts and logit effects; ``shown``:
    which latents and why (``latent, reason``)."""

    classes: pd.DataFrame
    causal: pd.DataFrame
    contexts: pd.DataFrame
    effects: pd.DataFrame
    shown: pd.DataFrame
    info: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.classes

    def summary(self) -> dict:
        c = self.causal[self.causal.kind == "all"].set_index("set")
        random = c[c.index.str.startswith("random")]
        genuine = [s for s in c.index if s.startswith("genuine")]
        out = {"latents": len(self.classes),
               "aligned_only_by_norm": int((self.classes["class"] == "aligned-only").sum()),
               "aligned_only_genuine": int((self.classes.final_class == "aligned-only").sum()),
               "base_only_genuine": int((self.classes.final_class == "base-only").sum()),
               # an empty set is the bias difference alone: None (JSON null), not the bias's figure renamed
               "closed_by_genuine_aligned_only": float(c.loc[genuine[0], "closed"])
               if genuine and int(c.loc[genuine[0], "n_latents"]) > 0 else None,
               "closed_by_random_control": float(random.closed.mean()) if len(random) else float("nan"),
               "closed_by_every_latent": float(c.loc["every latent", "closed"]) if "every latent" in c.index else float("nan"),
               "closed_by_bias_only": float(c.loc["bias only", "closed"]) if "bias only" in c.index else float("nan")}
        return {**out, **{k: v for k, v in self.info.items() if isinstance(v, (int, float, str))}}

    def figure(self, kind: str = "classes", title: str = ""):
        """``"classes"``: the relative-norm histogram; ``"causal"``: the causal test's bars."""
        from interp.plots import causal_closure_bars, latent_class_histogram

        if kind == "classes":
            return latent_class_histogram(self.classes, title=title or "Crosscoder latents by relative decoder norm")
        if kind == "causal":
            return causal_closure_bars(self.causal, title=title or "Which latents carry the alignment's change?")
        raise ValueError(f"kind must be 'classes' or 'causal', got {kind!r}")

    def browser(self) -> str:
        """The self-contained HTML latent browser of the shown latents."""
        return browser_html(self.classes, self.contexts, self.effects, self.classes, latents=self.shown.latent.tolist())


def _pick(classes: pd.DataFrame, per: int) -> pd.DataFrame:
    """The latents to show: genuine aligned-only (by relative norm), the shared latents that fire
    most more on refused chemistry than on answered geography, genuine base-only, and the most
    active ones on the held-out interactions (``per`` of each)."""
    picks = []
    genuine = classes[classes.final_class == "aligned-only"].sort_values("rel_norm", ascending=False)
    picks += [(j, "genuine aligned-only") for j in genuine.latent.head(per)]
    if "mean_diff" in classes:
        chem = classes[(classes.final_class == "shared")].sort_values("mean_diff", ascending=False)
        picks += [(j, "shared: fires on refused chemistry") for j in chem.latent.head(per)]
    base = classes[classes.final_class == "base-only"].sort_values("rel_norm")
    picks += [(j, "genuine base-only") for j in base.latent.head(per)]
    if "held_out_mean" in classes:
        taken = {j for j, _ in picks}
        busy = classes[~classes.latent.isin(taken)].sort_values("held_out_mean", ascending=False)
        picks += [(j, "most active on held-out interactions") for j in busy.latent.head(per)]
    frame = pd.DataFrame(picks, columns=["latent", "reason"])
    return frame.drop_duplicates("latent")


@torch.no_grad()
def explain_crosscoder(pair, model: Crosscoder, *, layer: int, scale, rows: Tensor | None = None,
                       examples: Tensor | None = None, tokens=None, ls_rows: Tensor | None = None, n_exchanges: int = 48,
                       k: int = 32, per: int = 6, n_random: int = 3, n_boot: int = 500,
                       progress: bool = True) -> CrosscoderFindings:
    """Classes (Latent Scaling on ``ls_rows``, else on the held-out interactions), the causal test
    on ``n_exchanges`` held-out chat interactions (half refused chemistry, half geography), group
    activations on refused chemistry vs answered geography prompts, and contexts / logit effects
    for ``per`` latents of each kind shown. Contexts come from ``rows`` / ``examples`` /
    ``tokens`` (e.g. a corpus store's; :func:`~interp.dictionary.data.paired_rows`) and always
    from the held-out interactions."""
    from interp.dictionary.corpus import held_out_exchanges, token_kinds
    from interp.dictionary.streams import text_rows
    from interp.prompts import format_prompt

    scale = torch.as_tensor(scale, dtype=torch.float32)
    tok = pair.aligned.tokenizer
    ex = held_out_exchanges(pair, n=n_exchanges)
    h_rows, h_examples, h_tokens = text_rows(pair, layer, list(ex.text))
    held = [h_rows.float() * scale[None, :, None]]
    ls = held if ls_rows is None else [ls_rows.float() * scale[None, :, None]]
    classes = latent_scaling(model, ls, latent_classes(model))
    classes["held_out_mean"] = model.encode(held[0].to(model.W_dec.device, model.W_dec.dtype), batch_rule=False).float().mean(0).cpu().numpy()
    chem = ex[(ex.domain == "chemistry") & (ex.aligned_class == "refusal")].user
    geo = ex[(ex.domain == "geography") & (ex.aligned_class == "correct")].user
    groups = {"refused_chemistry": [format_prompt(q, style="chat", tokenizer=tok) for q in chem],
              "answered_geography": [format_prompt(q, style="chat", tokenizer=tok) for q in geo]}
    if all(len(v) for v in groups.values()):
        g = group_activations(pair, model, layer, groups, scale=scale)
        classes = classes.merge(g, on="latent")
    kinds = [token_kinds(tok, r) for _, r in ex.iterrows()]
    causal = causal_closure(pair, model, layer, list(ex.text), kinds, default_sets(classes, k=k, n_random=n_random), scale=scale,
                            n_boot=n_boot, progress=progress)
    shown = _pick(classes, per)
    contexts = [top_contexts(model, h_rows, h_examples, h_tokens, tok, shown.latent.tolist(), scale=scale, n=4)
                .assign(source="held-out interactions")]
    if rows is not None:
        contexts.insert(0, top_contexts(model, rows, examples, tokens, tok, shown.latent.tolist(), scale=scale, n=6)
                        .assign(source="corpus"))
    effects = logit_effects(pair, model, shown.latent.tolist(), scale=scale)
    info = {"layer": layer, "width": model.width, "exchanges": len(ex),
            "refused_chemistry_prompts": len(groups["refused_chemistry"]),
            "answered_geography_prompts": len(groups["answered_geography"])}
    return CrosscoderFindings(classes, causal, pd.concat(contexts, ignore_index=True), effects, shown, info)


def add_dictionary_section(report, found: CrosscoderFindings, out: "str | Path | None" = None, *, stats: dict | None = None) -> None:
    """The report's feature-level diffing section: latent classes, the causal test, the latents
    shown (genuine aligned-only with contexts and logit effects, latents on refused chemistry)
    and the embedded latent browser; figures exported beside the report when ``out`` is given."""
    from interp.plots import export

    report.heading("Feature-level diffing: a crosscoder of the two models")
    s = found.summary()
    fve = (f" Held-out FVE base {stats['fve_base']:.2f}, aligned {stats['fve_aligned']:.2f} at L0 {stats['l0']:.1f}; "
           f"dead latents {stats['dead']:.1%}." if stats else "")
    report.text(f"Crosscoder at layer {s.get('layer')} with {s['latents']} latents: {s['aligned_only_by_norm']} aligned-only "
                f"by decoder norm, {s['aligned_only_genuine']} of them genuine after Latent Scaling; "
                f"{s['base_only_genuine']} genuine base-only.{fve}")
    for kind, caption in (("classes", "Latents by relative decoder norm, shaded by the class after Latent Scaling."),
                          ("causal", "Causal test on held-out chat interactions: the aligned model's stream at the layer "
                                     "replaced by the base's plus the decoded difference of each latent set and of the decoder "
                                     "biases; share of the next-token KL closed, by token kind (95% intervals over "
                                     "interactions). 'Every latent' checks the dictionary's fidelity; a smaller set's "
                                     "share is not its contribution.")):
        fig = found.figure(kind)
        if out is not None:
            export(fig, Path(out) / f"crosscoder_{kind}.html")
        report.figure(fig, caption)
    c = found.causal[found.causal.kind == "all"][["set", "n_latents", "tokens", "kl_base_stream", "kl_with_set", "closed",
                                                 "closed_low", "closed_high"]]
    report.table(c, "Causal test, every token but BOS.")
    cols = ["latent", "class", "final_class", "rel_norm", "nu_recon", "nu_error"] + \
        [x for x in ("mean_refused_chemistry", "mean_answered_geography") if x in found.classes]
    shown = found.shown.merge(found.classes[cols], on="latent")
    up = found.effects[found.effects.side == "aligned"].set_index("latent").promoted.map(lambda t: " ".join(t[:5]))
    report.table(shown.assign(aligned_promotes=shown.latent.map(up)), "The latents shown: why, their classes, mean "
                 "activation on refused chemistry and answered geography prompts, and the tokens each one's aligned "
                 "decoder direction promotes most.")
    report.parts.append(found.browser())
