"""The per-class DCGAN of notebooks 08 (and 05): shapes, one step, resume, NaN stop."""

from __future__ import annotations

import pytest
import torch

from course_lib.models import dcgan
from course_lib.models.dcgan import DCDiscriminator, DCGenerator, halvings, train_dcgan, train_per_class
from course_lib.models.gan import gan_step
from course_lib.train import TrainingDiverged


@pytest.mark.parametrize("size,channels", [(32, 1), (64, 3), (132, 1)])
def test_shapes(size, channels):
    G, D = DCGenerator(100, size, channels, width=4), DCDiscriminator(size, channels, width=4)
    with torch.no_grad():
        images = G(torch.randn(3, 100))
    assert images.shape == (3, channels, size, size)
    assert 0 <= float(images.min()) and float(images.max()) <= 1
    assert D(images).shape == (3,)


def test_bad_sizes_and_inputs():
    assert halvings(64) == 4 and halvings(132) == 2 and halvings(32) == 3
    with pytest.raises(ValueError, match="cannot be halved"):
        halvings(33)
    with pytest.raises(ValueError, match="latent vectors of shape"):
        DCGenerator(100, 32)(torch.randn(2, 50))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        train_dcgan(torch.full((4, 1, 16, 16), 2.0), epochs=1, progress=False)


def test_one_step_lowers_the_discriminator_loss():
    torch.manual_seed(0)
    G, D = DCGenerator(16, 16, 1, width=4), DCDiscriminator(16, 1, width=4)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real, z = torch.rand(8, 1, 16, 16), torch.randn(8, 16)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    with torch.no_grad():
        fake = G(z)
        before = bce(D(real), torch.ones(8)) + bce(D(fake), torch.zeros(8))
    out = gan_step(G, D, opt_g, opt_d, real, z)
    assert out["loss_d"] == pytest.approx(float(before), rel=1e-5)
    with torch.no_grad():
        after = bce(D(real), torch.ones(8)) + bce(D(fake), torch.zeros(8))
    assert float(after) < float(before)


def test_training_resumes_exactly(tmp_path):
    images = torch.rand(10, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    full = train_dcgan(images, epochs=3, latent=8, width=4, batch_size=4, progress=False)
    path = tmp_path / "g.pt"
    train_dcgan(images, epochs=2, latent=8, width=4, batch_size=4, checkpoint=path, checkpoint_every=1, progress=False)
    resumed = train_dcgan(images, epochs=3, latent=8, width=4, batch_size=4, checkpoint=path, progress=False)
    assert resumed.resumed_from == 2 and len(resumed.epochs) == 3
    assert resumed.column("loss_d") == pytest.approx(full.column("loss_d"))
    for a, b in zip(full.G.parameters(), resumed.G.parameters()):
        assert torch.allclose(a, b)
    loaded = train_dcgan(images, epochs=3, latent=8, width=4, batch_size=4, checkpoint=path, progress=False)
    assert loaded.resumed_from == 3


def test_nan_stops_training(monkeypatch):
    monkeypatch.setattr(dcgan, "gan_step", lambda *a, **k: {"loss_d": float("nan"), "loss_g": 1.0})
    with pytest.raises(TrainingDiverged, match="NaN"):
        train_dcgan(torch.rand(6, 1, 16, 16), epochs=2, latent=8, width=4, batch_size=4, progress=False)


def test_one_gan_per_class_cached(cache):
    x = torch.rand(12, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0] * 6 + [1] * 6)
    runs = train_per_class(x, y, ["a", "b"], epochs=2, latent=8, width=4, batch_size=4, progress=False)
    assert set(runs) == {"a", "b"} and all(len(r.epochs) == 2 for r in runs.values())
    again = train_per_class(x, y, ["a", "b"], epochs=2, latent=8, width=4, batch_size=4, progress=False)
    assert all(r.resumed_from == 2 for r in again.values())
