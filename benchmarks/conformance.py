"""The conformance matrix as numbers: max abs difference against the reference per family and
capability, on the tiny random models of ``tests/families.py`` (the unit tests assert <= 1e-4;
this prints what they measure). One JSON line per family, then a Markdown table.

Run: ``.venv/bin/python -m benchmarks.conformance`` (needs the tiny Llama tokenizer: it is written
to a temporary cache on first use).
"""

import json
import os
import tempfile
from pathlib import Path

import torch
from transformer_lens import patching as tl

from interp import hooks
from interp.cache.capture import capture
from interp.patching import (ablated, clean_activations, clean_resid_pre, head_sweep, hook_sweep, logit_diff,
                             logits_at, orthogonalize_weights_inplace, resid_pre_sweep)
from interp.prompts import PromptBatch
from interp.runtime import arch_of, family_of, normed_logits
from tests import families, tiny


def _tokenizer():
    from transformers import AutoTokenizer

    from interp.models.gguf import convert_gguf

    os.environ.setdefault("INTERP_CACHE", tempfile.mkdtemp(prefix="interp-conformance-"))
    path = Path(os.environ["INTERP_CACHE"]) / "tiny-llama.gguf"
    if not path.exists():
        tiny.write_tiny_llama_gguf(path)
    return AutoTokenizer.from_pretrained(convert_gguf(path))


def _ids(seed, B=2, T=7):
    ids = torch.randint(5, families.V, (B, T), generator=torch.Generator().manual_seed(seed))
    ids[:, 0] = 1
    return ids


def _plain(ids):
    return PromptBatch(ids, torch.ones_like(ids), {"last": torch.full((ids.shape[0],), ids.shape[1] - 1)}, [""] * len(ids))


def _padded():
    ids = _ids(0, B=3, T=8)
    mask = torch.ones_like(ids)
    mask[1, :3] = 0
    mask[2, :5] = 0
    return PromptBatch(ids.masked_fill(mask == 0, 3), mask, {"last": torch.full((3,), 7)}, [""] * 3)


def measure(name: str, tok) -> dict[str, float | str]:
    model = families.bridge(name, tok)
    out: dict[str, float | str] = {"family": name}
    metric, tl_metric = logit_diff([10, 10], [20, 20]), (lambda lg: (lg[:, -1, 10] - lg[:, -1, 20]).mean())
    with torch.inference_mode():
        b = _padded()
        _, cache = model.run_with_cache(b.input_ids, attention_mask=b.attention_mask)
        real = b.attention_mask.bool()
        got = capture(model, b, [("resid_pre", 1), ("resid_post", 1)], ["all"])
        out["store"] = max(float((got[(k, 1, "all")] - cache[hooks.name(k, 1)][real]).abs().max())
                           for k in ("resid_pre", "resid_post"))
        clean, corrupt = _ids(1), _ids(1)
        corrupt[:, 3] = _ids(2)[:, 3]
        _, cc = model.run_with_cache(clean)
        ref = tl.get_act_patch_resid_pre(model, corrupt, cc, tl_metric)
        out["resid_pre"] = float((resid_pre_sweep(model, _plain(corrupt), clean_resid_pre(model, _plain(clean)), metric)
                                  - ref).abs().max())
        for kind in ("resid_mid", "attn_out", "mlp_out", "resid_post"):
            if hooks.name(kind, 0) not in cc:
                out[kind] = "n/a"
                continue
            ref = tl.generic_activation_patch(model, corrupt, cc, tl_metric, tl.layer_pos_patch_setter, kind,
                                              ["layer", "pos"])
            ours = hook_sweep(model, _plain(corrupt), clean_activations(model, _plain(clean), kind), metric, kind=kind)
            out[kind] = float((ours - ref).abs().max())
        ref = tl.get_act_patch_attn_head_out_all_pos(model, corrupt, cc, tl_metric)
        out["heads"] = float((head_sweep(model, _plain(corrupt), clean_activations(model, _plain(clean), "z"), metric)
                              - ref).abs().max())
        logits = model(b.input_ids, attention_mask=b.attention_mask)[:, -1]
        lens = normed_logits(arch_of(model), capture(model, b, [("resid_post", 1)], ["last"])[("resid_post", 1, "last")])
        out["lens"] = float((lens - logits).abs().max())
        d = torch.randn(2, model.cfg.d_model, generator=torch.Generator().manual_seed(0))
        with ablated(model, d):
            hooked = model(b.input_ids, attention_mask=b.attention_mask)[:, -1]
            out["ablation"] = float((hooked - logits_at(model, b)).abs().max())
        if family_of(model).post_norm:
            out["orthogonalisation"] = "refused"
        else:
            with ablated(model, d[0], skip_first=False):
                ref = model(b.input_ids, attention_mask=b.attention_mask)[:, -1]
            fresh = orthogonalize_weights_inplace(families.bridge(name, tok), d[0])
            out["orthogonalisation"] = float((fresh(b.input_ids, attention_mask=b.attention_mask)[:, -1] - ref).abs().max())
    return out


#: The results file the documentation renders, and the code its numbers depend on (benchmarks/provenance.py).
RESULTS = Path(__file__).with_name("results_conformance_cpu.jsonl")
DEPENDS_ON = ["benchmarks/conformance.py", "tests/families.py", "interp/runtime", "interp/patching", "interp/cache",
              "interp/lens.py"]


def main() -> None:
    from benchmarks import provenance

    tok = _tokenizer()
    rows = [measure(name, tok) for name in families.FAMILIES]
    RESULTS.write_text("".join(json.dumps(r) + "\n" for r in rows))
    provenance.record(RESULTS, ".venv/bin/python -m benchmarks.conformance", DEPENDS_ON)
    for r in rows:
        print(json.dumps(r))
    cols = list(rows[0])[1:]
    print("| family | " + " | ".join(cols) + " |\n|" + "---|" * (len(cols) + 1))
    for r in rows:
        print(f"| {r['family']} | " + " | ".join(v if isinstance(v, str) else f"{v:.1e}" for v in list(r.values())[1:]) + " |")


if __name__ == "__main__":
    main()
