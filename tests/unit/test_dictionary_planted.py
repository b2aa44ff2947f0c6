"""The planted benchmark that can fail (interp.dictionary.planted): the data has what real streams
have (a mean, rare and co-occurring features, more features than dimensions, model-specific
features partly carried by shared ones), and class precision counts every labelled latent."""

import pytest
import torch

from interp.dictionary import Crosscoder, latent_classes
from interp.dictionary.planted import PlantedStreams, class_scores


def test_planted_streams_have_a_mean_rare_co_occurring_and_entangled_features():
    data = PlantedStreams(d_model=32, n_features=128, seed=1)
    assert data.n_features > data.d_model
    x = data.batch(20000)
    share = data.means.pow(2).sum(-1) / x.pow(2).sum(-1).mean(0)
    assert (share > 0.85).all() and (share < 0.99).all()  # mean-dominated, like the default pair's middle layers (92%)
    on = data.codes(20000) > 0
    freq = on.float().mean(0)
    rare = ~data.common()
    assert float(data.freq[rare].max()) < 0.02 and float(data.p.min()) == pytest.approx(0.4 * 128**-0.8)
    assert float(freq[rare].mean()) == pytest.approx(float(data.freq[rare].mean()), rel=0.2)
    entangled = torch.nonzero(data.partner >= 0).flatten()
    assert len(entangled) == int(0.1 * 128)
    for i in entangled.tolist():  # fires only with its partner, whose direction it partly shares in the aligned model
        j = int(data.partner[i])
        assert not (on[:, i] & ~on[:, j]).any()
        assert float(data.directions[i, 1] @ data.directions[j, 1]) == pytest.approx(0.6, abs=1e-5)
        assert data.directions[i, 0].abs().sum() == 0 and data.classes[i] == "aligned-only"
    lead, follow = data.pairs[0]
    assert float(on[on[:, lead], follow].float().mean()) > 0.65  # co-occurring
    with pytest.raises(ValueError, match="summing to 1"):
        PlantedStreams(shares=(0.5, 0.5, 0.5, 0.0, 0.0))


def test_class_precision_counts_every_labelled_latent_not_only_matched_ones():
    """A dictionary that holds every planted feature exactly plus one aligned-only latent along no
    planted feature: aligned-only recall stays 1, precision drops to n / (n + 1) (scoring only the
    latents matched to planted features, as the old benchmark did, gives 1.0)."""
    data = PlantedStreams(d_model=16, n_features=40, seed=2)
    g = torch.Generator().manual_seed(0)
    cc = Crosscoder(16, data.n_features + 1, 2, k=None)
    with torch.no_grad():
        cc.W_dec[: data.n_features] = data.directions
        cc.W_dec[-1] = torch.stack([torch.zeros(16), torch.nn.functional.normalize(torch.randn(16, generator=g), dim=0)])
    classes = latent_classes(cc)
    got = class_scores(cc, data, classes)
    n_aligned = data.classes.count("aligned-only")
    assert got["aligned-only"]["labelled"] == n_aligned + 1 and got["aligned-only"]["matched_nothing"] == 1
    assert got["aligned-only"]["precision"] == pytest.approx(n_aligned / (n_aligned + 1))
    assert got["aligned-only"]["recall"] == 1.0 and got["base-only"]["precision"] == 1.0
    assert got["shared"]["precision"] == 1.0 and got["recovered"] == 1.0
    assert got["recovered_common"] == 1.0 and got["recovered_rare"] == 1.0
    classes.loc[classes.latent == int(data.kinds.index("aligned-only-entangled")), "class"] = "shared"  # a wrong label
    assert class_scores(cc, data, classes)["recall_aligned-only-entangled"] < 1.0
