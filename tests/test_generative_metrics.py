"""IS, FID and SSIM helpers of notebook 05 on cases with known answers, and the offline feature network."""

from __future__ import annotations

import urllib.error

import pytest
import torch
from torch import nn

from course_lib import generative_metrics as gm
from course_lib.data.imageset import ImageSet
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
    pair = gm.fid_like_with_like(real, (real + 0.3).clamp(0, 1), TOY, splits=3, seed=0)
    assert pair.sizes == (25, 25) and pair.splits == 3 and 0 <= pair.real < pair.generated
    with pytest.raises(ValueError, match="at least 2 images"):
        gm.fid(real[:1], real, TOY)
    with pytest.raises(ValueError, match="at least 4 images"):
        gm.fid_like_with_like(real[:3], real, TOY)


def test_fid_from_cached_features_is_torchmetrics_fid():
    real, fake = _noisy(30, (0.5, 0.4, 0.3), 0), _noisy(20, (0.6, 0.4, 0.3), 1)
    ours = gm._frechet(gm._fid_features(real, TOY), gm._fid_features(fake, TOY))
    assert ours == pytest.approx(gm.fid(real, fake, TOY), rel=1e-6, abs=1e-9)


def _varied(n: int, seed: int) -> torch.Tensor:
    """Images whose colour statistics vary from image to image: one draw from a fixed distribution."""
    g = torch.Generator().manual_seed(seed)
    base = 0.3 + 0.4 * torch.rand(n, 3, 1, 1, generator=g)
    spread = 0.05 + 0.1 * torch.rand(n, 3, 1, 1, generator=g)
    return (base + spread * torch.randn(n, 3, 8, 8, generator=g)).clamp(0, 1)


def _one_class(x: torch.Tensor, name: str) -> ImageSet:
    return ImageSet(x, torch.zeros(len(x), dtype=torch.long), ["c"], name, "test fixture")


def test_a_perfect_generator_is_not_below_the_fid_baseline():
    # a "generator" that draws other images from the real distribution: 20 real images, 100 generated,
    # as in a class of the study. Its FID must sit on the real-vs-real baseline, not below it (comparing
    # all 20 real with 100 generated against 10 real with 10 others put it at about a third of it).
    fids, baselines = [], []
    for seed in range(12):
        real, fake = _one_class(_varied(20, seed), "real"), _one_class(_varied(100, 1000 + seed), "generated")
        row = gm.per_class_quality(real, fake, TOY, ssim_pairs=5, seed=seed, progress=False, fid_splits=4).iloc[0]
        assert row["FID images"] == "10 vs 10"
        fids.append(row["fid"])
        baselines.append(row["FID real-vs-real"])
    ratio = sum(fids) / sum(baselines)
    assert 0.8 < ratio < 1.25, f"a perfect generator should score like the baseline, got {ratio:.2f} of it"
    far = gm.fid_like_with_like(_varied(20, 0), (_varied(100, 1) + 0.2).clamp(0, 1), TOY, splits=4)
    assert far.generated > 3 * far.real, "a shifted generator stays far above the baseline"


def test_inception_scores_of_real_and_generated_use_the_same_images_and_splits():
    # 8 real images, 100 generated: both scored on 8 images in 4 groups of 2, so neither can exceed 2
    real = torch.cat([_noisy(4, (0.9, 0.1, 0.1), 0), _noisy(4, (0.1, 0.9, 0.1), 1)])
    colours = [(0.9, 0.1, 0.1), (0.1, 0.9, 0.1), (0.1, 0.1, 0.9)]
    fake = torch.cat([_noisy(34, c, 10 + k) for k, c in enumerate(colours)])[:100]
    scores = gm.paired_inception_scores(real, fake, TOY, splits=10, seed=0)
    assert (scores.images, scores.splits, scores.per_split) == (8, 4, 2)
    assert 1.0 <= scores.real <= 2.0 + 1e-6 and 1.0 <= scores.generated <= 2.0 + 1e-6, "IS <= images per split"
    # per_class_quality reports the same numbers (before, the generated set was scored in 10 groups of 10)
    row = gm.per_class_quality(_one_class(real, "real"), _one_class(fake, "generated"), TOY, ssim_pairs=5,
                               progress=False).iloc[0]
    assert (row["IS images"], row["IS splits"]) == (8, 4)
    assert row["inception_score"] == pytest.approx(scores.generated) and row["IS real"] == pytest.approx(scores.real)
    # over all three colours with large groups, the generated set can reach about 3
    whole = gm.paired_inception_scores(fake, fake, TOY, splits=2)
    assert whole.per_split == 50 and whole.generated > 2.5


def test_whole_set_inception_scores_every_class_together():
    colours = [(0.9, 0.1, 0.1), (0.1, 0.9, 0.1), (0.1, 0.1, 0.9)]
    x = torch.cat([_noisy(10, c, k) for k, c in enumerate(colours)])
    y = torch.arange(3).repeat_interleave(10)
    real = ImageSet(x, y, ["r", "g", "b"], "real", "test fixture")
    fake = ImageSet(x.flip(0), y.flip(0), ["r", "g", "b"], "generated", "test fixture")
    scores = gm.whole_set_inception(real, fake, TOY, splits=1)
    assert scores.images == 30 and scores.real == pytest.approx(scores.generated, rel=1e-4) and scores.real > 2.5
    with pytest.raises(ValueError, match="same classes"):
        gm.whole_set_inception(real, ImageSet(x, y, ["a", "b", "c"], "other", "test fixture"), TOY)


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


def test_mean_ssim_within_uses_distinct_pairs_only():
    from skimage.metrics import structural_similarity

    x = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    arrays = x.permute(0, 2, 3, 1).double().numpy()
    scores = [structural_similarity(arrays[i], arrays[j], data_range=1.0, channel_axis=-1)
              for i in range(8) for j in range(8) if i != j]
    expected = sum(scores) / len(scores)
    assert abs(expected) < 0.05, "random images hardly resemble each other"
    assert gm.mean_ssim_within(x) == pytest.approx(expected)
    # the real-vs-real column of the quality table is that mean (self-pairs would add 1/8 of ones: about 0.13)
    row = gm.per_class_quality(_one_class(x, "real"), _one_class(x[:4], "generated"), TOY, ssim_pairs=None,
                               progress=False).iloc[0]
    assert row["SSIM real-vs-real"] == pytest.approx(expected)
    sampled = gm.mean_ssim_within(x, max_pairs=5, seed=1)
    assert min(scores) <= sampled <= max(scores) and sampled == gm.mean_ssim_within(x, max_pairs=5, seed=1)
    with pytest.raises(ValueError, match="at least 2 images"):
        gm.mean_ssim_within(x[:1])


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
