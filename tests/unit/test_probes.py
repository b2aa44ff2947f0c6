import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from interp.probes import (
    accuracy, auroc, ccs_scores, check_compatible, control_labels, direction_cosines, evaluate_probes, fit_ccs,
    fit_logistic, fit_mass_mean, fit_multiclass, fit_probes, load_probes, save_probes, transfer,
)
from interp.probes import C_GRID, seen_entity_rows, selected_layers, validation_rows


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
    tr, te = slice(0, n // 2), slice(n // 2, n)
    probe = fit_ccs(pos[None, tr], neg[None, tr], steps=300)
    acc = ((ccs_scores(probe, pos[None, te], neg[None, te]) > 0.5).long() == truth[te]).float().mean().item()
    assert max(acc, 1 - acc) > 0.9  # CCS recovers truth up to a sign, on held-out pairs
    # The held-out rows are scored with the training normaliser: shifting the test set as a whole
    # moves its scores (a test-set normaliser would absorb the shift and hide it).
    shifted = probe.scores(pos[None, te] + 5 * direction, neg[None, te] + 5 * direction)
    assert not torch.allclose(shifted, probe.scores(pos[None, te], neg[None, te]))


def _entity_data(n_entities=100, rows=4, d=128, seed=0):
    """Entities with a vector of their own (shared by their rows, as statements about one subject
    share its representation) on layers 1-3, and a truth signal per row growing with the layer:
    layer 0 has neither, so a probe can memorise entities from layer 1 on."""
    g = torch.Generator().manual_seed(seed)
    n = n_entities * rows
    entities = [f"e{i // rows}" for i in range(n)]
    y = torch.randint(0, 2, (n,), generator=g)
    direction = torch.randn(d, generator=g)
    direction /= direction.norm()
    own = torch.randn(n_entities, d, generator=g) * 2
    own = (own - (own @ direction)[:, None] * direction).repeat_interleave(rows, 0)  # orthogonal to the truth direction
    X = torch.randn(4, n, d, generator=g)
    for layer, s in enumerate((0.0, 0.5, 1.5, 3.0)):
        X[layer] += s * (2 * y[:, None] - 1) * direction + (layer > 0) * own
    return X * 1000 + 5000, y, entities


def test_evaluate_chooses_on_validation_and_controls_on_seen_entities():
    X, y, entities = _entity_data()
    tr, te = slice(0, 300), slice(300, 400)  # entity-disjoint: 4 rows per entity
    frame, probes = evaluate_probes(X[:, tr], y[tr], X[:, te], y[te], model="base", layers=[0, 1, 2, 3],
                                    entities_train=entities[tr], entities_test=entities[te], n_boot=50, n_perm=200)
    assert list(frame.columns) == ["model", "layer", "probe", "split", "metric", "value", "ci_low", "ci_high"]
    assert {"logistic", "mass_mean", "random_direction", "control_task", "majority_class"} <= set(frame["probe"])
    assert set(frame.split) == {"val", "test", "seen_entities"}
    acc = frame[(frame.probe == "logistic") & (frame.metric == "accuracy") & (frame.split == "test")].set_index("layer")
    assert acc.loc[3, "ci_low"] <= acc.loc[3, "value"] <= acc.loc[3, "ci_high"] and acc.loc[3, "value"] > 0.9
    # The control task on held-out rows of *seen* entities: the entity vectors make memorising pay
    # from layer 1 on (where the old control on unseen entities sat at 0.5 by construction).
    ctrl = frame[(frame.probe == "control_task") & (frame.metric == "accuracy")].set_index("layer")["value"]
    assert ctrl[0] < 0.65 and ctrl[1] > 0.75
    sel = frame[frame.metric == "selectivity"].set_index("layer")["value"]
    assert sel[3] == pytest.approx(acc.loc[3, "value"] - ctrl[3])
    chosen = selected_layers(frame).set_index(["model", "probe"]).loc[("base", "logistic")]
    assert chosen.layer == 3 and chosen.p_any_layer < 0.01 and 0.35 < chosen.majority_class < 0.65
    assert probes["logistic"].C is not None and set(probes["logistic"].C) <= set(C_GRID)


def test_the_selected_layer_never_reads_test_rows():
    """Selection (layer and C) comes from validation rows carved from training entities: scrambling
    the test split's labels and activations changes test numbers but not what was chosen."""
    X, y, entities = _entity_data()
    tr, te = slice(0, 300), slice(300, 400)
    kw = dict(model="base", layers=[0, 1, 2, 3], entities_train=entities[tr], entities_test=entities[te], n_boot=0, n_perm=0)
    frame, probes = evaluate_probes(X[:, tr], y[tr], X[:, te], y[te], **kw)
    g = torch.Generator().manual_seed(9)
    X_bad = X[:, te].flip(0) + 1000 * torch.randn(X[:, te].shape, generator=g)  # layers reversed, noise added
    frame_bad, probes_bad = evaluate_probes(X[:, tr], y[tr], X_bad, 1 - y[te], **kw)
    a, b = selected_layers(frame), selected_layers(frame_bad)
    assert list(a.layer) == list(b.layer) and list(a.val_accuracy) == list(b.val_accuracy)
    assert probes["logistic"].C == probes_bad["logistic"].C
    assert not a.accuracy.equals(b.accuracy)  # the test numbers did change


def test_validation_and_seen_entity_rows():
    import numpy as np

    ents = np.array([f"e{i // 3}" for i in range(60)] + ["solo"])
    labels = np.array([i % 2 for i in range(61)])
    val = validation_rows(ents, labels, fraction=0.25)
    assert not set(ents[val]) & set(ents[~val])  # whole entities
    assert len(set(ents[val])) == 5  # a quarter of 21 entities
    held = seen_entity_rows(ents)
    assert not held[-1]  # an entity with one row stays in
    for e in set(ents) - {"solo"}:
        k = held[ents == e].sum()
        assert 1 <= k <= 2  # some, never all, rows of each repeated entity
    with pytest.raises(ValueError, match="both labels"):
        validation_rows(ents, np.r_[np.zeros(60, int), 1], fraction=0.25)


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


def test_the_demo_summary_reads_the_layer_chosen_on_validation():
    """The demo's headline (``probe_summary``) reports the validation-chosen layer: scrambling the
    test rows moves its accuracy, never its layer."""
    from interp.probes import ProbeResult
    from interp.workflows.demo import probe_summary

    X, y, entities = _entity_data()
    tr, te = slice(0, 300), slice(300, 400)
    kw = dict(layers=[0, 1, 2, 3], entities_train=entities[tr], entities_test=entities[te], n_boot=20, n_perm=50)
    X_bad = X[:, te].flip(0)
    runs = []
    for X_te, y_te in ((X[:, te], y[te]), (X_bad, 1 - y[te])):
        frames = [evaluate_probes(X[:, tr], y[tr], X_te, y_te, model=side, **kw)[0] for side in ("base", "aligned")]
        runs.append(probe_summary(ProbeResult(pd.concat(frames, ignore_index=True), {})))
    for side in ("base", "aligned"):
        assert runs[0][side]["layer"] == runs[1][side]["layer"] == 3
        assert runs[0][side]["accuracy"] > 0.9 > runs[1][side]["accuracy"]
