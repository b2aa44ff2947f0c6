"""interp's dictionaries against sae-lens itself, both ways.

sae-lens is not a dependency (it pins transformer-lens < 4): ``sae-lens==6.54.12`` is installed
once with ``pip install --target --no-deps`` into ``$INTERP_CACHE/test/sae-lens-6.54.12`` (reused
by later runs; the test skips, saying why, when it cannot be installed) and runs in a subprocess
with this environment's torch, safetensors, transformer-lens, huggingface-hub and PyYAML. Two
shims, in that subprocess only: ``sae_lens/__init__.py`` imports the training stack (wandb,
datasets runners, ``HookedSAETransformer``), so the package module is created empty and only
``sae_lens.saes`` is imported, with the inference classes registered as ``sae_lens/__init__.py``
registers them; and ``transformer_lens.HookedTransformer.HookedRootModule``, which
transformer-lens 4 moved to ``transformer_lens.HookedRootModule``, is aliased. The SAE classes,
``SAE.load_from_disk`` and ``save_model`` run as shipped.

Checked: SAEs saved by interp (BatchTopK -> JumpReLU, per-token top-k, ReLU; each with an input
scale folded into the file) load in sae-lens and encode the same raw activations to the same
active latents and reconstructions (1e-5, fp32); SAEs saved by sae-lens (standard without
``apply_b_dec_to_input``, standard with ``layer_norm``, top-k with ``rescale_acts_by_decoder_norm``,
JumpReLU with ``constant_norm_rescale``) load in interp and do the same. An SAE reads one stream,
so either side of a pair: the activations are one model's rows.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from interp.dictionary import BatchTopKSAE
from interp.dictionary.io import load_dictionary, save_dictionary
from interp.paths import cache_dir

pytestmark = pytest.mark.slow  # a subprocess importing torch, transformer-lens and sae-lens

SAE_LENS = "sae-lens==6.54.12"
D, WIDTH = 16, 48

_SCRIPT = r'''
import json, logging, pathlib, sys, types
import torch
from safetensors.torch import load_file, save_file

target, work = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
pkg = types.ModuleType("sae_lens")  # sae_lens/__init__.py pulls in the training stack: skip it
pkg.__path__, pkg.__version__, pkg.logger = [str(target / "sae_lens")], "6.54.12", logging.getLogger("sae_lens")
sys.modules["sae_lens"] = pkg
import transformer_lens  # transformer-lens 4 moved HookedRootModule out of transformer_lens.HookedTransformer
root = getattr(transformer_lens.HookedRootModule, "HookedRootModule", transformer_lens.HookedRootModule)
shim = types.ModuleType("transformer_lens.HookedTransformer")
shim.HookedRootModule = root
sys.modules["transformer_lens.HookedTransformer"] = shim
import sae_lens.saes as S
from sae_lens.registry import register_sae_class
for arch, cls, cfg in (("standard", S.StandardSAE, S.StandardSAEConfig), ("topk", S.TopKSAE, S.TopKSAEConfig),
                       ("jumprelu", S.JumpReLUSAE, S.JumpReLUSAEConfig)):
    register_sae_class(arch, cls, cfg)
x = load_file(str(work / "x.safetensors"))["x"]
report = {}
with torch.no_grad():
    for folder in sorted((work / "from_interp").iterdir()):  # interp's files, read by sae-lens
        sae = S.SAE.load_from_disk(folder)
        f = sae.encode(x)
        save_file({"f": f.contiguous(), "r": sae.decode(f).contiguous()}, str(folder / "sae_lens_out.safetensors"))
        report[folder.name] = {"class": type(sae).__name__, "normalize_activations": sae.cfg.normalize_activations}
    g = torch.Generator().manual_seed(0)
    d, w = x.shape[-1], int(sys.argv[3])
    made = {
        "standard_raw_input": S.StandardSAE(S.StandardSAEConfig(d_in=d, d_sae=w, apply_b_dec_to_input=False)),
        "standard_layer_norm": S.StandardSAE(S.StandardSAEConfig(d_in=d, d_sae=w, normalize_activations="layer_norm")),
        "topk_rescaled": S.TopKSAE(S.TopKSAEConfig(d_in=d, d_sae=w, k=5, rescale_acts_by_decoder_norm=True)),
        "jumprelu_norm_rescale": S.JumpReLUSAE(S.JumpReLUSAEConfig(d_in=d, d_sae=w,
                                                                   normalize_activations="constant_norm_rescale")),
    }
    for name, sae in made.items():  # sae-lens's files, read by interp
        sae.W_enc.copy_(torch.randn(d, w, generator=g) * 0.4)
        sae.W_dec.copy_(torch.randn(w, d, generator=g) * (0.2 + torch.rand(w, 1, generator=g)))
        sae.b_enc.copy_(torch.randn(w, generator=g) * 0.3)
        sae.b_dec.copy_(torch.randn(d, generator=g))
        if hasattr(sae, "threshold"):
            sae.threshold.copy_(torch.rand(w, generator=g) * 0.8)
        folder = work / "from_sae_lens" / name
        sae.save_model(folder)
        f = sae.encode(x)
        f = f.to_dense() if f.is_sparse else f
        save_file({"f": f.contiguous(), "r": sae.decode(f).contiguous()}, str(folder / "sae_lens_out.safetensors"))
print(json.dumps(report))
'''


def _sae_lens_env() -> Path:
    """sae-lens in its own ``pip --target`` folder under the interp cache, installed once."""
    target = cache_dir("test", "sae-lens-6.54.12")
    if (target / ".complete").is_file():
        return target
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        res = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                              "--target", str(tmp), SAE_LENS], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        res = None
    if res is None or res.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        why = "pip timed out" if res is None else res.stderr.strip()[-300:]
        pytest.skip(f"{SAE_LENS} could not be installed into {target} (no network?): {why}")
    (tmp / ".complete").write_text("ok\n")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def _interp_saes() -> dict[str, tuple[BatchTopKSAE, float]]:
    """Three interp SAEs (non-zero decoder bias, unequal decoder norms) and the input scale each
    was 'trained' at."""
    g = torch.Generator().manual_seed(1)
    out = {}
    for name, k, scale in (("batchtopk", 4, 0.3), ("topk", 4, 0.7), ("relu", None, 1.7)):
        sae = BatchTopKSAE(D, WIDTH, k=k or 1, seed=3)
        sae.k = k
        with torch.no_grad():
            sae.W_dec.mul_(0.5 + torch.rand(WIDTH, 1, 1, generator=g))
            sae.b_dec.copy_(torch.randn(1, D, generator=g))
            sae.b_enc.copy_(torch.randn(WIDTH, generator=g) * 0.2 - 0.3)
        if name == "batchtopk":
            sae.fit_threshold([torch.randn(256, 1, D, generator=g) * 4 * scale for _ in range(4)])
        sae.per_token = name == "topk"
        out[name] = (sae.eval(), scale)
    return out


def _same(f_ours, r_ours, out, what):
    assert torch.equal(f_ours > 0, out["f"] > 0), f"{what}: the active latents differ"
    assert torch.allclose(f_ours, out["f"], atol=1e-5, rtol=1e-5), f"{what}: latent values differ"
    assert torch.allclose(r_ours, out["r"], atol=1e-5, rtol=1e-5), f"{what}: reconstructions differ"


def test_interp_and_sae_lens_read_each_others_saes(tmp_path):
    env = _sae_lens_env()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, D, generator=g) * 4 + torch.randn(D, generator=g) * 3  # raw activations with a mean
    save_file({"x": x}, str(tmp_path / "x.safetensors"))
    ours = _interp_saes()
    for name, (sae, scale) in ours.items():
        save_dictionary(sae, tmp_path / "from_interp" / name, hook_name="blocks.1.hook_resid_post", hook_layer=1,
                        input_scale=[scale])
    res = subprocess.run([sys.executable, "-c", _SCRIPT, str(env), str(tmp_path), str(WIDTH)], capture_output=True,
                         text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(env)})
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report["batchtopk"]["class"] == "JumpReLUSAE" and report["topk"]["class"] == "TopKSAE"
    assert report["relu"]["class"] == "StandardSAE"
    assert {r["normalize_activations"] for r in report.values()} == {"none"}  # the scale is in the weights
    for name, (sae, scale) in ours.items():  # saved by interp, encoded by sae-lens from raw activations
        out = load_file(str(tmp_path / "from_interp" / name / "sae_lens_out.safetensors"))
        with torch.no_grad():
            f = sae.encode(x * scale, batch_rule=False)
            _same(f, sae.decode(f) / scale, out, f"interp -> sae-lens ({name})")
        assert 0 < int((out["f"] > 0).sum()) < out["f"].numel()
        back = load_dictionary(tmp_path / "from_interp" / name)  # and back into interp: the trained parametrisation
        assert back.cfg["input_scale"] == pytest.approx([scale]) and back.k == sae.k and back.per_token == sae.per_token
        assert torch.allclose(back.W_enc, sae.W_enc, atol=1e-6) and torch.allclose(back.b_dec, sae.b_dec, atol=1e-6)
    for name in ("standard_raw_input", "standard_layer_norm", "topk_rescaled", "jumprelu_norm_rescale"):
        folder = tmp_path / "from_sae_lens" / name  # saved by sae-lens, read by interp
        sae = load_dictionary(folder)
        assert sae.cfg["input_scale"] == [1.0]
        with torch.no_grad():
            r, f = sae(x)
        out = load_file(str(folder / "sae_lens_out.safetensors"))
        _same(f, r, out, f"sae-lens -> interp ({name})")
        assert 0 < int((f > 0).sum()) < f.numel(), name
    assert not load_dictionary(tmp_path / "from_sae_lens" / "standard_raw_input").apply_b_dec_to_input
    assert load_dictionary(tmp_path / "from_sae_lens" / "jumprelu_norm_rescale").jump_threshold is not None
