"""Where the mask lives: the base's weights restored in the aligned model, and the base's residual
stream patched into the aligned run (same interface as :mod:`interp.unmask.interventions`)."""

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from interp.models import ModelPair
import pandas as pd

from interp.patching import answer_vs_token
from interp.prompts import encode
from interp.runtime import arch_of, check_layer, on_layer_input, on_layer_output, unwrapped
from interp.unmask.interventions import Intervention, side_prompts
from interp.unmask.learn import answer_nll

__all__ = ["WeightRestore", "ActivationPatch", "WEIGHT_KINDS", "weight_screen", "patch_screen"]

#: Matrix groups :class:`WeightRestore` restores: the attention block, the MLP block, or both.
WEIGHT_KINDS: tuple[str, ...] = ("attn", "mlp", "all")


def _layer_params(model: TransformerBridge, layer: int, kind: str) -> dict[str, Tensor]:
    """The parameters of one decoder layer of ``kind`` (attention block, MLP block or all), by name."""
    with unwrapped(model):  # HF parameter names, without the bridge's wrappers
        arch = arch_of(model)
        params = dict(arch.layers[layer].named_parameters())
    if kind == "all":
        return params
    prefix = (arch.family.attn if kind == "attn" else arch.family.mlp) + "."
    return {n: p for n, p in params.items() if n.startswith(prefix)}


@dataclass
class WeightRestore(Intervention):
    """Copy the base's weights of ``kind`` (``"attn"``, ``"mlp"`` or ``"all"`` of the layer,
    norms included) for each of ``layers`` into the aligned model; restored on exit. For any pair
    of one architecture. ``everything=True`` restores every parameter of the model (embeddings,
    final norm and unembedding too): the aligned model then computes exactly what the base does."""

    source: TransformerBridge | None = None
    layers: Sequence[int] = ()
    kind: str = "all"
    everything: bool = False

    def __post_init__(self) -> None:
        if self.source is None:
            raise ValueError("WeightRestore needs source= (the base model)")
        if self.kind not in WEIGHT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(WEIGHT_KINDS)}, got {self.kind!r}")
        self.layers = tuple(check_layer(x, int(self.source.cfg.n_layers)) for x in self.layers)
        if not self.layers and not self.everything:
            raise ValueError("WeightRestore needs at least one layer (or everything=True)")
        self.method = "weights"

    @property
    def setting(self) -> str:
        if self.everything:
            return "every parameter"
        ls = self.layers
        span = f"{ls[0]}-{ls[-1]}" if len(ls) > 2 and list(ls) == list(range(ls[0], ls[-1] + 1)) else ",".join(map(str, ls))
        return f"{self.kind} of layer{'s' if len(ls) > 1 else ''} {span}"

    @property
    def rank(self) -> None:
        return None

    def _pairs(self, model: TransformerBridge) -> list[tuple[Tensor, Tensor]]:
        from interp.models.load import is_quantized

        if is_quantized(self.source) or is_quantized(model):
            raise ValueError("WeightRestore copies weights between the models; one of them was loaded with quantize=, "
                             "whose weights are packed integers. Load both sides unquantized for weight restores")
        if self.everything:
            dst = dict(model.original_model.named_parameters())
            src = dict(self.source.original_model.named_parameters())
            if dst.keys() != src.keys():
                raise ValueError("WeightRestore: the two models' parameter names differ; pass a pair of one architecture")
            return [(dst[n], src[n]) for n in dst]
        out = []
        for layer in self.layers:
            dst, src = _layer_params(model, layer, self.kind), _layer_params(self.source, layer, self.kind)
            if dst.keys() != src.keys():
                raise ValueError(f"WeightRestore: layer {layer}'s parameters differ between the models")
            out += [(dst[n], src[n]) for n in dst]
        return out

    @contextmanager
    def applied(self, model: TransformerBridge) -> Iterator[TransformerBridge]:
        pairs = [(d, s) for d, s in self._pairs(model) if d is not s]  # shared tensors (adapter pair) already agree
        saved = [d.detach().clone() for d, _ in pairs]
        try:
            with torch.no_grad():
                for d, s in pairs:
                    d.copy_(s.to(d.device, d.dtype))
            yield model
        finally:
            with torch.no_grad():
                for (d, _), keep in zip(pairs, saved):
                    d.copy_(keep)


@dataclass
class ActivationPatch(Intervention):
    """Patch the base's residual stream (the base reading its own prompt format) into the aligned
    run at ``layers`` x marked ``positions``, matched by marked position: ``"span_last"`` (the
    subject's last token), ``"last"`` (the last prompt token) or ``"all"`` (every prompt position:
    only for prompts that tokenise to the same length on both sides, e.g. a pair whose two sides
    use one format). ``base_format`` maps questions to the base's prompts (default: its own format,
    no exemplars; pass a few-shot formatter to patch the run in which the base answers). Layer
    ``l < n_layers`` patches ``resid_pre`` of block ``l``; ``l == n_layers``
    the stream entering the final norm. The prompt only: generated tokens run unpatched, reading
    the patched prompt's keys and values. Call :meth:`prepare` with the questions (and subjects)
    first."""

    pair: ModelPair | None = None
    layers: Sequence[int] = ()
    positions: Sequence[str] = ("last",)
    base_format: Callable[[Sequence[str]], list[str]] | None = None
    _values: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.pair is None:
            raise ValueError("ActivationPatch needs pair=")
        self.layers = tuple(check_layer(x, self.pair.n_layers + 1) for x in self.layers)
        self.positions = tuple(self.positions)
        bad = [p for p in self.positions if p not in ("last", "span_last", "all")]
        if bad or not self.layers or not self.positions:
            raise ValueError(f"ActivationPatch needs layers and positions from ('last', 'span_last', 'all'), got {self.positions}")
        self.method = "patch"

    @property
    def setting(self) -> str:
        return f"layers {','.join(map(str, self.layers))} at {'+'.join(self.positions)}"

    @property
    def rank(self) -> None:
        return None

    def prepare(self, pair: ModelPair, questions: Sequence[str], spans: Sequence[str] | None = None) -> None:
        from interp.patching.core import clean_resid_post, clean_resid_pre

        if "span_last" in self.positions and spans is None:
            raise ValueError("ActivationPatch at 'span_last' needs the subjects (spans=) of the questions")
        use_spans = spans if "span_last" in self.positions else None
        base_prompts = self.base_format(questions) if self.base_format else side_prompts(pair, "base", questions)
        b = encode(pair.base.tokenizer, base_prompts, spans=use_spans)
        a = encode(pair.aligned.tokenizer, self.format(pair, questions), spans=use_spans)
        n = pair.n_layers
        pre = clean_resid_pre(pair.base, b)
        streams = torch.cat([pre, clean_resid_post(pair.base, b)[n - 1:]]) if n in self.layers else pre
        streams = streams[list(self.layers)].cpu()  # [L, B, T, d]
        for i in range(len(questions)):
            ids = tuple(a.input_ids[i, a.n_pad[i]:].tolist())
            if "all" in self.positions:
                length = len(ids)
                if int(b.attention_mask[i].sum()) != length:
                    raise ValueError(f"ActivationPatch at 'all' needs prompts of one length on both sides; question {i} has "
                                     f"{int(b.attention_mask[i].sum())} base and {length} aligned tokens")
                dst, src = list(range(length)), [int(b.n_pad[i]) + k for k in range(length)]
            else:
                dst = [int(a.positions[p][i] - a.n_pad[i]) for p in self.positions]
                src = [int(b.positions[p][i]) for p in self.positions]
            self._values[ids] = (dst, streams[:, i, src])  # positions in the unpadded prompt, [L, P, d]

    @contextmanager
    def applied(self, model: TransformerBridge) -> Iterator[TransformerBridge]:
        rows: dict[str, list] = {}
        n = int(model.cfg.n_layers)
        arch = arch_of(model)

        def find_rows(mod, args, kwargs):
            ids = args[0] if args else kwargs.get("input")
            rows["now"] = []
            if ids is None or ids.shape[1] == 1:  # a decoding step: nothing to patch
                return
            for r in range(ids.shape[0]):
                seq = ids[r].tolist()
                for start in range(len(seq)):  # strip left padding: the longest suffix that is a prepared prompt
                    hit = self._values.get(tuple(seq[start:]))
                    if hit is not None:
                        rows["now"].append((r, start, hit))
                        break

        def patch(li: int):
            def write(x: Tensor, kwargs: dict | None = None) -> Tensor:
                if not rows.get("now"):
                    return x
                x = x.clone()
                for r, offset, (dst, vals) in rows["now"]:
                    x[r, [offset + p for p in dst]] = vals[li].to(x.device, x.dtype)
                return x
            return write

        handles = [arch.embed.register_forward_pre_hook(find_rows, with_kwargs=True)]
        for li, layer in enumerate(self.layers):  # layer n: the last layer's output, which the final norm reads
            handles += on_layer_input(arch, layer, patch(li)) if layer < n else [on_layer_output(arch, n - 1, patch(li))]
        try:
            yield model
        finally:
            for h in handles:
                h.remove()


def weight_screen(pair: ModelPair, frames: dict[str, pd.DataFrame], *, top: int = 3, batch_size: int = 32) -> pd.DataFrame:
    """Per mask, the mean log-probability per token of the base's answer (``"X."``) after the chat
    prompt with the base's weights restored in the aligned model (``gain``: minus the unrestored
    model's): every layer whole (``kind="all"``), then its attention and its MLP block alone for
    the ``top`` layers with the largest gain. One pass over every mask's facts per candidate."""
    masks = [m for m, f in frames.items() if len(f)]
    facts = pd.concat([frames[m].assign(mask=m) for m in masks])
    prompts = side_prompts(pair, "aligned", list(facts.text))
    answers = [f"{a}." for a in facts.answer]

    def by_mask() -> pd.Series:
        lp = -answer_nll(pair.aligned, prompts, answers, batch_size=batch_size).numpy()
        return pd.Series(lp, index=facts["mask"].to_numpy()).groupby(level=0).mean()

    clean = by_mask()
    rows = []

    def screen(layer: int, kind: str) -> None:
        with WeightRestore(source=pair.base, layers=(layer,), kind=kind).applied(pair.aligned):
            lp = by_mask()
        rows.extend({"mask": m, "layer": layer, "kind": kind, "answer_logprob": float(lp[m]),
                     "gain": float(lp[m] - clean[m])} for m in masks)

    for layer in range(pair.n_layers):
        screen(layer, "all")
    whole = pd.DataFrame(rows)
    best = whole.groupby("layer").gain.max().sort_values(ascending=False).index[:top]
    for layer in sorted(int(x) for x in best):
        for kind in ("attn", "mlp"):
            screen(layer, kind)
    return pd.DataFrame(rows)


def patch_screen(pair: ModelPair, frame: pd.DataFrame, base_format, positions=("span_last", "last")) -> pd.DataFrame:
    """The cross-model ``resid_pre`` sweep, base (its few-shot prompt, ``base_format``) -> aligned
    (chat), layer x marked position, metric logit(answer) - logit('I') at the last prompt token."""
    from interp.patching import clean_resid_pre, resid_pre_sweep

    questions, spans = list(frame.text), list(frame.subject)
    src = encode(pair.base.tokenizer, base_format(questions), spans=spans)
    dst = encode(pair.aligned.tokenizer, side_prompts(pair, "aligned", questions), spans=spans)
    values = clean_resid_pre(pair.base, src)
    rows = torch.arange(len(questions))
    remapped = torch.zeros(values.shape[0], len(questions), dst.input_ids.shape[1], values.shape[-1], dtype=values.dtype)
    for p in positions:
        remapped[:, rows, dst.position(p)] = values[:, rows, src.position(p)].cpu()
    dst_pos = torch.stack([dst.position(p) for p in positions])
    metric = answer_vs_token(pair.aligned.tokenizer, list(frame.answer))
    grid = resid_pre_sweep(pair.aligned, dst, remapped, metric, positions=dst_pos)
    return pd.DataFrame([{"layer": layer, "position": p, "value": float(grid[layer, j])}
                         for layer in range(grid.shape[0]) for j, p in enumerate(positions)])
