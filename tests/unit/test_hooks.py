import pytest

from interp import hooks


def test_names_and_parse_round_trip():
    for kind in hooks.HOOK_KINDS:
        for layer in (0, 7):
            assert hooks.parse(hooks.name(kind, layer)) == (kind, layer)
    assert hooks.resid_post(3) == "blocks.3.hook_resid_post"
    assert hooks.names("mlp_out", [0, 2]) == ["blocks.0.hook_mlp_out", "blocks.2.hook_mlp_out"]


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="unknown hook kind 'resid'"):
        hooks.name("resid", 0)
    with pytest.raises(ValueError, match="layer must be a non-negative int"):
        hooks.name("resid_pre", -1)
    with pytest.raises(ValueError, match="is not a per-layer hook name"):
        hooks.parse("blocks.1.attn.hook_z")


def test_names_exist_on_a_real_bridge(tiny_gemma_dir):
    from interp import load_model

    model = load_model(str(tiny_gemma_dir), device="cpu")
    wanted = [hooks.name(k, layer) for k in hooks.HOOK_KINDS for layer in range(model.cfg.n_layers)]
    hooks.check_available(model.hook_dict.keys(), wanted + [hooks.FINAL_NORM])
    with pytest.raises(ValueError, match="hooks not found on the model: blocks.9.hook_resid_pre"):
        hooks.check_available(model.hook_dict.keys(), [hooks.resid_pre(9)])
