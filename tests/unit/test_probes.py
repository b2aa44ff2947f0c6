import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from interp.probes import (
    accuracy, auroc, ccs_scores, check_compatible, control_labels, direction_cosines, evaluate_probes, fit_ccs,
    fit_logistic, fit_mass_mean, fit_multiclass, fit_probes, load_probes, save_probes, transfer,
)


def _data(layers=4, n=400, d=32, signal=(0.0, 0.5, 1.5, 3.0), seed=0, scale=1000.0):
    """Layer l separates the classes along a direction with strength signal[l] (layer 0: none)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    direction = torch.randn(d, generator=g)
    direction /= direction.norm()
    X = torch.randn(layers, n, d, generator=g)
    for layer, s in enumerate(signal[:layers]):
        X[layer] += s * (2 * y[:, None] - 1) * direction
    return X * scale + 5 * scale, y, direction  # far from unit scale and centred away from 0, like residuals


def test_logistic_matches_sklearn_layer_by_layer():
    X, y, _ = _data()
    tr, te = slice(0, 300), slice(300, 400)
    w, b = fit_logistic(X[:, tr], y[tr])
    ours = accuracy(torch.einsum("lnd,ld->ln", X[:, te], w) + b[:, None], y[te])
    for layer in range(4):
        scaler = StandardScaler().fit(X[layer, tr].numpy())
        clf = LogisticRegression(C=1.0, max_iter=2000).fit(scaler.transform(X[layer, tr].numpy()), y[tr].numpy())
        ref = clf.score(scaler.transform(X[layer, te].numpy()), y[te].numpy())
        assert abs(ours[layer].item() - ref) <= 0.02, (layer, ours[layer].item(), ref)
    assert ours[0] < 0.65 and ours[3] > 0.95  # no signal -> chance; strong signal -> solved


def test_auroc_matches_sklearn_with_ties():
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 2, (200,), generator=g)
    scores = torch.round(torch.randn(3, 200, generator=g) + y, decimals=1)  # many ties
    ours = auroc(scores, y)
    for layer in range(3):
        assert abs(ours[layer].item() - roc_auc_score(y.numpy(), scores[layer].numpy())) <= 1e-6


def test_mass_mean_and_covariance_variant():
    X, y, direction = _data()
    for cov in (False, True):
        w, b = fit_mass_mean(X[:, :300], y[:300], covariance=cov)
        acc = accuracy(torch.einsum("lnd,ld->ln", X[:, 300:], w) + b[:, None], y[300:])
        assert acc[3] > 0.95
    w, _ = fit_mass_mean(X, y)
    assert direction_cosines(w[3:], direction[None]).item() > 0.9


def test_multiclass():
    g = torch.Generator().manual_seed(2)
    y = torch.randint(0, 4, (600,), generator=g)
    centers = torch.randn(4, 16, generator=g) * 3
    X = torch.stack([torch.randn(600, 16, generator=g) * 0.5 + centers[y], torch.randn(600, 16, generator=g)])
    W, b = fit_multiclass(X[:, :500], y[:500], 4)
    pred = (torch.einsum("lnd,ldk->lnk", X[:, 500:], W) + b[:, None]).argmax(-1)
    acc = (pred == y[500:]).float().mean(-1)
    assert acc[0] > 0.95 and acc[1] < 0.45
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        fit_multiclass(X, y, 3)


def test_ccs_finds_the_truth_direction_without_labels():
    g = torch.Generator().manual_seed(3)
    n, d = 300, 24
    truth = torch.randint(0, 2, (n,), generator=g)
    direction = torch.randn(d, generator=g)
    common = torch.randn(n, d, generator=g)
    pos = common + 2.0 * (2 * truth[:, None] - 1) * direction / direction.norm() + 0.3 * torch.randn(n, d, generator=g)
    neg = common - 2.0 * (2 * truth[:, None] - 1) * direction / direction.norm() + 0.3 * torch.randn(n, d, generator=g)
    w, b = fit_ccs(pos[None], neg[None], steps=300)
    acc = ((ccs_scores(w, b, pos[None], neg[None]) > 0.5).long() == truth).float().mean().item()
    assert max(acc, 1 - acc) > 0.9  # CCS recovers truth up to a sign


def test_evaluate_with_controls_and_selectivity():
    X, y, _ = _data()
    entities = [f"e{i // 2}" for i in range(400)]
    frame, probes = evaluate_probes(X[:, :300], y[:300], X[:, 300:], y[300:], model="base", layers=[0, 1, 2, 3],
                                    entities_train=entities[:300], entities_test=entities[300:], n_boot=50)
    assert list(frame.columns) == ["model", "layer", "probe", "split", "metric", "value", "ci_low", "ci_high"]
    assert {"logistic", "mass_mean", "random_direction", "control_task"} <= set(frame["probe"])
    acc = frame[(frame.probe == "logistic") & (frame.metric == "accuracy")].set_index("layer")
    assert acc.loc[3, "ci_low"] <= acc.loc[3, "value"] <= acc.loc[3, "ci_high"]
    ctrl = frame[(frame.probe == "control_task") & (frame.metric == "accuracy")]["value"]
    assert ctrl.max() < 0.7  # random per-entity labels do not generalise to new entities
    sel = frame[frame.metric == "selectivity"].set_index("layer")["value"]
    assert sel[3] > 0.3


def test_control_labels_are_per_entity():
    labels = control_labels(["a", "b", "a", "c", "b"], seed=0)
    assert labels[0] == labels[2] and labels[1] == labels[4]


def test_transfer_between_sides():
    X, y, _ = _data()
    Xa = X.clone()
    Xa[3] = X[3] + 0.1 * torch.randn_like(X[3]) * 1000
    frame = transfer({"base": X[:, :300], "aligned": Xa[:, :300]}, y[:300], {"base": X[:, 300:], "aligned": Xa[:, 300:]},
                     y[300:], layers=[0, 1, 2, 3], n_boot=0)
    assert set(frame["model"]) == {"base->aligned", "aligned->base", "base~aligned"}
    cos = frame[frame.metric == "cosine"].set_index("layer")["value"]
    assert cos[3] > 0.5


def test_save_load_and_compatibility(tmp_path):
    X, y, _ = _data(layers=2)
    probe = fit_probes(X, y, "logistic", [5, 6])
    save_probes(probe, tmp_path / "p", hook="resid_post", model={"name": "base"}, dataset_fingerprint="abc")
    loaded, meta = load_probes(tmp_path / "p")
    assert loaded.layers == [5, 6] and torch.equal(loaded.w, probe.w) and meta["dataset_fingerprint"] == "abc"
    check_compatible(meta, hook="resid_post", d_model=32)
    with pytest.raises(ValueError, match="probe expects width 32, activations have width 64"):
        check_compatible(meta, hook="resid_post", d_model=64)
    with pytest.raises(ValueError, match="fitted on hook 'resid_post', activations are from 'resid_pre'"):
        check_compatible(meta, hook="resid_pre", d_model=32)
    with pytest.raises(ValueError, match="activations have width 8 but the probe expects 32"):
        loaded.scores(torch.zeros(2, 3, 8))
    with pytest.raises(FileNotFoundError, match="no probe at"):
        load_probes(tmp_path / "missing")


def test_bad_labels():
    X, y, _ = _data(layers=1)
    with pytest.raises(ValueError, match="needs labels 0 and 1"):
        fit_logistic(X, torch.zeros_like(y))
    with pytest.raises(ValueError, match="unknown probe kind 'svm'"):
        fit_probes(X, y, "svm")
