"""IS, FID and SSIM helpers of notebook 05 on cases with known answers, and the offline feature network."""

from __future__ import annotations

import urllib.error

import pytest
import torch
from torch import nn

from course_lib import generative_metrics as gm
from course_lib.data.traffic_signs import make_standin


class ColourLogits(nn.Module):
    """Logits that say 'red', 'green' or 'blue' from an image's mean colour (confident: scaled by 30)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 30 * x.float().mean((2, 3))


class ColourStats(nn.Module):
    """Six features: each channel's mean and standard deviation."""

    num_features = 6

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        return torch.cat([x.mean((2, 3)), x.std((2, 3))], 1).double()


TOY = gm.FeatureNet("toy colour features", ColourStats(), ColourLogits())


def _noisy(n: int, colour: tuple[float, float, float], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.tensor(colour).view(1, 3, 1, 1)
    return (base + 0.1 * torch.randn(n, 3, 16, 16, generator=g)).clamp(0, 1)


def test_inception_score_is_one_for_identical_images_of_one_class():
    images = _noisy(1, (0.9, 0.1, 0.1), 0).repeat(20, 1, 1, 1)
    mean, std = gm.inception_score(images, TOY)
    assert mean == pytest.approx(1.0, abs=1e-5) and std == pytest.approx(0.0, abs=1e-5)


def test_inception_score_grows_with_well_separated_classes():
    three = torch.cat([_noisy(20, c, k) for k, c in enumerate([(0.9, 0.1, 0.1), (0.1, 0.9, 0.1), (0.1, 0.1, 0.9)])])
    one = _noisy(60, (0.9, 0.1, 0.1), 5)
    is_three, _ = gm.inception_score(three, TOY, splits=1)
    is_one, _ = gm.inception_score(one, TOY, splits=1)
    assert is_three > 2.5 > 1.1 > is_one  # up to 3 for three confidently told-apart, equally used classes


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    real = _noisy(50, (0.5, 0.4, 0.3), 0)
    same = gm.fid(real, real, TOY)
    small = gm.fid(real, (real + 0.05).clamp(0, 1), TOY)
    large = gm.fid(real, (real + 0.3).clamp(0, 1), TOY)
    assert same == pytest.approx(0.0, abs=1e-4)
    assert 0.001 < small < large
    baseline = gm.fid_baseline(real, TOY, seed=0)
    assert 0 <= baseline < large
    with pytest.raises(ValueError, match="at least 2 images"):
        gm.fid(real[:1], real, TOY)


def test_mean_ssim_is_one_for_identical_sets_and_low_for_noise():
    picture = _noisy(1, (0.5, 0.4, 0.3), 0)
    picture[:, :, 4:12, 4:12] = 0.9  # some structure
    copies = picture.repeat(3, 1, 1, 1)
    assert gm.mean_ssim(copies, copies) == pytest.approx(1.0)
    noise = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    assert gm.mean_ssim(copies, noise) < 0.3
    grey = copies[:, :1]
    assert gm.mean_ssim(grey, grey) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same image shape"):
        gm.mean_ssim(copies, grey)


def test_mean_ssim_averages_over_all_pairs():
    a = _noisy(2, (0.5, 0.5, 0.5), 0)
    b = _noisy(3, (0.5, 0.5, 0.5), 1)
    pairs = [gm.mean_ssim(a[i:i + 1], b[j:j + 1]) for i in range(2) for j in range(3)]
    assert gm.mean_ssim(a, b) == pytest.approx(sum(pairs) / 6)
    sampled = gm.mean_ssim(a, b, max_pairs=3, seed=0)
    assert min(pairs) <= sampled <= max(pairs) and sampled == gm.mean_ssim(a, b, max_pairs=3, seed=0)


def test_inception_download_failure_is_caught(monkeypatch):
    import torchmetrics.image.fid as tm_fid

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.setattr(tm_fid, "FrechetInceptionDistance", offline)
    net, why = gm.try_inception()
    assert net is None and "URLError" in why


def test_fallback_feature_net_is_trained_named_and_reloaded_offline(cache, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.setattr(gm, "inception_weights_cached", lambda: False)
    train, _ = make_standin(size=32, test_per_class=1)
    small = train.subset(list(range(0, 277, 4)))
    net = gm.inception_features_or_fallback(small, epochs=2)
    out = capsys.readouterr().out
    assert not net.inception and "NOT Inception-v3" in net.name and net.name in out and "offline" in out
    assert list(cache.rglob("sign-feature-cnn-*.pt"))  # checkpoint in the course cache
    x = small.x[:12]
    assert net.fid_feature(x).shape == (12, 128) and net.is_feature(x).shape == (12, 10)
    # the IS path may hand the network uint8 images: same features as the float images
    assert torch.allclose(net.fid_feature((x * 255).round().byte()), net.fid_feature(x), atol=0.05)
    again = gm.train_feature_net(small, epochs=2, progress=False)  # loads the checkpoint instead of training
    assert torch.equal(again.fid_feature(x), net.fid_feature(x))
    assert gm.fid(x, x, net) == pytest.approx(0.0, abs=1e-2)
    assert gm.inception_score(x, net)[0] >= 1.0
