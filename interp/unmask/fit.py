"""Selection and fitting on train facts only: directions, subspaces and learned edits per mask.

For each mask (``refused``, ``abstained``) the train facts it concerns are those the base answers
correctly and the aligned model masks in the same way (its class measured here, greedy, chat
format); the guard-like train facts are those it answers correctly.

- **directions**: per layer, difference of means of ``resid_pre`` at the last prompt token of the
  aligned model, one per non-answer mode: ``refusal`` (train prompts it refuses minus prompts it
  answers) and ``abstention`` ("I don't know" minus answered); massive dimensions excluded.
- **principal directions**: the top right singular vectors of the per-prompt differences
  aligned minus base (the same chat prompt into both models, last token) on the mask's train facts.
- **layer selection** (ablation): for each candidate layer the mask's own mode direction is
  ablated and the aligned model answers a validation part of the mask's train facts; the layer with
  the highest accuracy among those with next-token KL <= ``kl_max`` on answered train prompts wins.
- **learned edits** (:func:`interp.unmask.learn.fit_edit`): a steering vector and a rank-``r``
  edit per mask, at each candidate layer, on the mask's train facts plus as many answered train
  facts (their answers kept) with a KL penalty on other answered train prompts; the layer with the
  lowest validation loss (NLL on held-back train facts + KL) wins.

:func:`fit_unmask` returns an :class:`UnmaskFit`, saved with :meth:`UnmaskFit.save` as
``unmask.safetensors`` + ``unmask.json`` (temporary names, then renamed) so that evaluation can
read it instead of fitting again (the default pair ships one).
"""

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from interp.atomic import atomic_path, write_json_atomic
from interp.behavior import classify, generate
from interp.behavior.memo import remembered_answers
from interp.models import ModelPair
from interp.patching.core import clean_resid_pre
from interp.patching.directions import ablated, kl_last_token, last_logits, mean_diff_directions
from interp.prompts import encode
from interp.unmask.interventions import LowRankEdit, Steering, side_prompts
from interp.unmask.learn import answer_nll, fit_edit
from interp.unmask.measure import MASKS
from interp.unmask.prereg import candidates, fit_controls, preregister

__all__ = ["UnmaskFit", "fit_unmask", "train_sets", "principal_directions"]

#: For each mask, the mode direction that leads its subspace, then the other one.
MODE_ORDER = {"refused": ("refusal", "abstention"), "abstained": ("abstention", "refusal")}


@dataclass
class UnmaskFit:
    """Everything fitted on train facts: per mask, the selected layer, the basis whose first ``k``
    rows are ablated for k = 1..8, and the learned edits; with the selection tables."""

    direction_layer: dict[str, int]
    basis: dict[str, torch.Tensor]  # mask -> [k_max, d]
    basis_labels: dict[str, list[str]]
    edits: dict[str, dict[str, Steering | LowRankEdit]]  # mask -> {"steering": ..., "lowrank": ...}
    selection: pd.DataFrame
    info: dict = field(default_factory=dict)
    controls: dict[str, dict[str, Steering | LowRankEdit]] = field(default_factory=dict)  # mask -> {control: edit}

    def save(self, folder: "str | os.PathLike[str]") -> Path:
        """Write ``unmask.safetensors`` and ``unmask.json`` into ``folder`` (atomically)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors, meta = {}, {"direction_layer": self.direction_layer, "basis_labels": self.basis_labels, "edits": {},
                             "selection": self.selection.to_dict(orient="records"), "info": self.info}
        for mask, b in self.basis.items():
            tensors[f"basis.{mask}"] = b.contiguous().float()
        for group, prefix, store in (("edits", "edit", self.edits), ("controls", "control", self.controls)):
            meta[group] = {}
            for mask, edits in store.items():
                meta[group][mask] = {}
                for kind, e in edits.items():
                    meta[group][mask][kind] = {"layer": e.layer, "type": type(e).__name__, "positions": e.positions}
                    if isinstance(e, Steering):
                        tensors[f"{prefix}.{mask}.{kind}.vector"] = e.vector.contiguous().float()
                    else:
                        for name in ("U", "V", "b"):
                            tensors[f"{prefix}.{mask}.{kind}.{name}"] = getattr(e, name).contiguous().float()
        # Two files, one artefact: the tensors first, then the record, which carries the tensors'
        # checksum; load() refuses a pair whose checksums differ (a writer killed between the two).
        with atomic_path(folder / "unmask.safetensors") as tmp:
            save_file(tensors, str(tmp))
            meta["tensors_sha256"] = _sha256(tmp)
        write_json_atomic(folder / "unmask.json", meta, default=float)
        return folder / "unmask.json"

    @classmethod
    def load(cls, folder: "str | os.PathLike[str]") -> "UnmaskFit":
        """Read what :meth:`save` wrote; a clear error if the files are missing."""
        folder = Path(folder)
        meta_file, tensor_file = folder / "unmask.json", folder / "unmask.safetensors"
        if not meta_file.is_file() or not tensor_file.is_file():
            raise FileNotFoundError(f"{folder} holds no unmask.json + unmask.safetensors; run `interp unmask --fit` "
                                    "(or fit_unmask(...).save(folder)) first")
        meta = json.loads(meta_file.read_text())
        want = meta.get("tensors_sha256")
        if want is not None and _sha256(tensor_file) != want:
            raise ValueError(f"{folder}: unmask.safetensors does not belong to unmask.json (checksum differs: the "
                             "two were written by different fits, or a write was interrupted); re-run "
                             "`interp unmask --fit --fit-dir <folder>`")
        t = load_file(str(tensor_file))
        groups: dict = {"edits": {}, "controls": {}}
        for group, prefix in (("edits", "edit"), ("controls", "control")):
            for mask, kinds in meta.get(group, {}).items():
                groups[group][mask] = {}
                for kind, e in kinds.items():
                    p = f"{prefix}.{mask}.{kind}."
                    where = e.get("positions", "last")  # fits saved before positions were recorded used "last"
                    iv = (Steering(vector=t[p + "vector"], layer=e["layer"], positions=where) if e["type"] == "Steering" else
                          LowRankEdit(U=t[p + "U"], V=t[p + "V"], b=t[p + "b"], layer=e["layer"], positions=where))
                    if group == "controls":
                        iv.label = f"control {kind}"
                    groups[group][mask][kind] = iv
        return cls({k: int(v) for k, v in meta["direction_layer"].items()},
                   {k[len("basis."):]: v for k, v in t.items() if k.startswith("basis.")},
                   meta["basis_labels"], groups["edits"], pd.DataFrame(meta["selection"]), meta.get("info", {}),
                   groups["controls"])


def _sha256(path: "str | os.PathLike[str]") -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _chat(pair: ModelPair, texts: Sequence[str]) -> list[str]:
    return side_prompts(pair, "aligned", list(texts))


def train_sets(pair: ModelPair, train: pd.DataFrame, *, max_per_set: int = 64, max_new_tokens: int = 8,
               batch_size: int = 32, seed: int = 0, progress: bool = True) -> dict[str, pd.DataFrame]:
    """Train facts by the aligned model's class (measured here on a seeded sample):
    ``refused`` / ``abstained`` (base correct, aligned masks), ``refused_unknown`` /
    ``abstained_unknown`` (base wrong, aligned masks: the never-knew control), ``answered`` (aligned correct),
    ``refusal_mode`` / ``abstention_mode`` (any fact the aligned model refuses / abstains on)."""
    # every train fact up to 4,096 (the never-knew control needs the rare base-unknown facts of masked relations)
    pool = train.sample(4096, random_state=seed) if len(train) > 4096 else train
    # every base-correct fact the aligned model might mask is worth measuring: keep them all
    extra = train[train.base_correct & ~train.id.isin(pool.id)]
    pool = pd.concat([pool, extra])
    # greedy answers with no hook active: read back from the answers memo when the same weights, code
    # and versions gave them before (interp.behavior.memo)
    outs = remembered_answers(pair.aligned, _chat(pair, pool.text), max_new_tokens=max_new_tokens, batch_size=batch_size,
                              progress="unmask: aligned on train facts" if progress else False)
    pool = pool.assign(aligned_class=[classify(o, a) for o, a in zip(outs, pool.aliases)])
    cap = lambda f: f.sample(min(len(f), max_per_set), random_state=seed)  # noqa: E731
    out = {name: cap(pool[pool.base_correct & (pool.aligned_class == cls)]) for name, cls in MASKS.items()}
    # the never-knew control's facts: the base does not know them, the aligned model masks them
    out.update({f"{name}_unknown": cap(pool[~pool.base_correct & (pool.aligned_class == cls)]) for name, cls in MASKS.items()})
    out["answered"] = cap(pool[pool.aligned_class == "correct"])
    out["refusal_mode"] = cap(pool[pool.aligned_class == "refusal"])
    out["abstention_mode"] = cap(pool[pool.aligned_class == "idk"])
    return out


def principal_directions(pair: ModelPair, prompts: Sequence[str], layer: int, k: int, *,
                         exclude_massive: float = 10.0) -> torch.Tensor:
    """``[k, d]``: top right singular vectors of aligned-minus-base ``resid_pre`` at ``layer``, last
    token, over the same chat prompts into both models (massive dimensions zeroed, as in
    :func:`interp.patching.mean_diff_directions`)."""
    batch = encode(pair.aligned.tokenizer, list(prompts))
    a = clean_resid_pre(pair.aligned, batch)[layer].float()
    b = clean_resid_pre(pair.base, batch)[layer].float()
    rows = torch.arange(len(batch))
    last = batch.positions["last"].to(a.device)
    diff = (a[rows, last] - b[rows, last]).cpu()
    real = batch.attention_mask.bool().clone()
    real[rows, batch.n_pad] = False
    magnitude = a.cpu()[real].abs().mean(0)
    diff[:, magnitude > exclude_massive * magnitude.median()] = 0.0
    _, _, vh = torch.linalg.svd(diff, full_matrices=False)
    return vh[:k]


def _accuracy(pair: ModelPair, frame: pd.DataFrame, max_new_tokens: int, batch_size: int) -> float:
    outs = generate(pair.aligned, _chat(pair, frame.text), max_new_tokens=max_new_tokens, batch_size=batch_size)
    return float(np.mean([classify(o, a) == "correct" for o, a in zip(outs, frame.aliases)]))


def fit_unmask(
    pair: ModelPair,
    train: pd.DataFrame,
    *,
    layers: Sequence[int] = (4, 6, 8, 10),
    edit_layers: Sequence[int] = (6, 10),
    rank: int = 4,
    k_max: int = 8,
    steps: int = 30,
    kl_weight: float = 3.0,
    kl_max: float = 0.2,
    n_val: int = 16,
    max_new_tokens: int = 8,
    batch_size: int = 32,
    seed: int = 0,
    with_controls: bool = True,
    progress: bool = True,
) -> UnmaskFit:
    """Select and fit every intervention on ``train`` facts (columns as for
    :func:`interp.unmask.unmask_sets`, with ``base_correct``); see the module docs. The headline of
    each mask is pre-registered here and, with ``with_controls``, its controls are fitted with the
    same budget (:mod:`interp.unmask.prereg`)."""
    t0 = time.perf_counter()
    sets = train_sets(pair, train, max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed, progress=progress)
    if len(sets["answered"]) < 4:
        raise ValueError(f"only {len(sets['answered'])} train facts are answered correctly by the aligned model; "
                         "need at least 4 to contrast against")
    masks = [m for m in MASKS if len(sets[m]) >= 4]
    if not masks:
        raise ValueError("no mask has 4 train facts the base answers and the aligned model masks; nothing to fit")
    answered = sets["answered"]
    half = len(answered) // 2
    contrast, kl_facts = answered.iloc[:half], answered.iloc[half:]
    dirs = {}
    for mode, frame in (("refusal", sets["refusal_mode"]), ("abstention", sets["abstention_mode"])):
        if len(frame) >= 4:
            dirs[mode] = mean_diff_directions(pair.aligned, encode(pair.aligned.tokenizer, _chat(pair, frame.text)),
                                              encode(pair.aligned.tokenizer, _chat(pair, contrast.text))).cpu()
    kl_batch = encode(pair.aligned.tokenizer, _chat(pair, kl_facts.text))
    clean = last_logits(pair.aligned, kl_batch)
    rows, direction_layer, basis, labels, edits = [], {}, {}, {}, {}
    preregistered, controls, control_info = {}, {}, {}
    for mask in masks:
        modes = [m for m in MODE_ORDER[mask] if m in dirs]
        fit_facts = sets[mask]
        val = fit_facts.head(n_val)
        best = None
        for layer in layers:
            with ablated(pair.aligned, dirs[modes[0]][layer]):
                acc = _accuracy(pair, val, max_new_tokens, batch_size)
                kl = float(kl_last_token(clean, last_logits(pair.aligned, kl_batch)).mean())
            rows.append({"mask": mask, "what": f"ablate {modes[0]} direction", "layer": layer, "train_accuracy": acc,
                         "kl": kl, "n": len(val)})
            key = (kl <= kl_max, acc, -kl)
            if best is None or key > best[0]:
                best = (key, layer)
        layer = best[1]
        direction_layer[mask] = layer
        pcs = principal_directions(pair, _chat(pair, fit_facts.text), layer, k_max)
        stack = [dirs[m][layer] for m in modes] + list(pcs)
        names = [m for m in modes] + [f"pc{i + 1}" for i in range(len(pcs))]
        basis[mask], labels[mask] = torch.stack(stack[:k_max]).float(), names[:k_max]
        edits[mask] = {}
        # learned edits: fit on most of the mask's train facts, validate on the rest
        n_hold = max(2, len(fit_facts) // 4)
        hold, learn = fit_facts.iloc[:n_hold], fit_facts.iloc[n_hold:]
        keep = answered.sample(min(len(answered), len(learn)), random_state=seed + 1)
        fit_prompts = _chat(pair, list(learn.text) + list(keep.text))
        fit_answers = [f"{a}." for a in list(learn.answer) + list(keep.answer)]
        for kind, r in (("steering", 0), ("lowrank", rank)):
            best = None
            for layer in edit_layers:
                iv, hist = fit_edit(pair.aligned, fit_prompts, fit_answers, _chat(pair, kl_facts.text), layer=layer, rank=r,
                                    steps=steps, kl_weight=kl_weight, batch_size=16, seed=seed, progress=progress)
                with iv.applied(pair.aligned):
                    nll = float(answer_nll(pair.aligned, _chat(pair, hold.text), [f"{a}." for a in hold.answer]).mean())
                    kl = float(kl_last_token(clean, last_logits(pair.aligned, kl_batch)).mean())
                rows.append({"mask": mask, "what": f"learned {kind}", "layer": layer, "val_nll": nll, "kl": kl,
                             "final_train_loss": float(hist.loss.tail(5).mean()), "n": len(hold)})
                score = nll + kl
                if best is None or score < best[0]:
                    best = (score, iv)
            edits[mask][kind] = best[1]
        # The headline, chosen on the held-back train facts before any evaluation fact is read
        choice, pre_rows = preregister(pair, mask, candidates(basis[mask], labels[mask], direction_layer[mask], edits[mask]), hold,
                                       kl_facts, _chat(pair, kl_facts.text), kl_max=kl_max,
                                       max_new_tokens=max_new_tokens, batch_size=batch_size)
        rows += pre_rows
        preregistered[mask] = choice
        if with_controls:
            family = "steering" if choice["kind"] == "steering" else "lowrank"
            controls[mask] = fit_controls(pair, edits[mask][family], learn, keep, sets[f"{mask}_unknown"], answered,
                                          _chat(pair, kl_facts.text), steps=steps, kl_weight=kl_weight, seed=seed,
                                          progress=progress)
            control_info[mask] = {"family": family, "n_never_knew_facts": min(len(learn), len(sets[f"{mask}_unknown"])),
                                  "n_mask_facts": len(learn), "n_keep": len(keep)}
    info = {"seconds": round(time.perf_counter() - t0, 1), "train_sets": {k: len(v) for k, v in sets.items()},
            "layers": list(layers), "edit_layers": list(edit_layers), "rank": rank, "steps": steps, "kl_weight": kl_weight,
            "kl_max": kl_max, "seed": seed, "preregistered": preregistered, "controls": control_info,
            "train_ids": {m: [str(i) for i in sets[m].id] for m in masks}}
    return UnmaskFit(direction_layer, basis, labels, edits, pd.DataFrame(rows), info, controls)
