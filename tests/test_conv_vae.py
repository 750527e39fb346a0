"""The per-class conv VAE of notebook 05 (document 001, Table 1): layers, loss, training, resume, sampling."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib.models import conv_vae
from course_lib.models.conv_vae import (TABLE1_CHANNELS, TABLE1_FLATTEN, ConvVAE, param_count, sample,
                                        table1_param_count, throughput, train_vae, train_vae_per_class, vae_loss)
from course_lib.train import TrainingDiverged


def tiny(size: int = 16) -> ConvVAE:
    return ConvVAE(size=size, channels=3, width=0.125, latent=8, depth=4)


def test_full_size_layers_match_table1():
    model = ConvVAE()                                    # 64x64x3, full width, latent 512
    convs = [m for m in model.encoder if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == list(TABLE1_CHANNELS)
    assert all(c.kernel_size == (3, 3) and c.stride == (2, 2) and c.padding == (1, 1) for c in convs)
    leaky = [m for m in model.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(leaky) == 11 and all(m.negative_slope == 0.02 for m in leaky)   # 6 encoder + 5 decoder layers
    hidden = [m for m in model.encoder if isinstance(m, nn.Linear)]
    assert [(h.out_features) for h in hidden] == [1024]
    assert model.mu.out_features == model.logvar.out_features == 512
    assert any(isinstance(m, nn.SELU) for m in model.encoder) and any(isinstance(m, nn.BatchNorm1d) for m in model.encoder)
    deconvs = [m for m in model.decoder if isinstance(m, nn.ConvTranspose2d)]
    assert [d.out_channels for d in deconvs] == [512, 256, 128, 64, 32, 3]
    assert isinstance(model.decoder[-1], nn.Sigmoid)
    # parameters: the model against a count made from the table's layer list (flatten 1024 at 64 px)
    assert param_count(model) == table1_param_count(64)
    # the table's printed 4096 is what a 128x128 input gives with the same six layers
    assert param_count(ConvVAE(size=128)) == table1_param_count(flatten=TABLE1_FLATTEN) == table1_param_count(128)
    assert model.flat == 1024 and ConvVAE(size=128).flat == TABLE1_FLATTEN


@pytest.mark.parametrize("size,depth", [(16, 4), (32, 4), (32, 5)])
def test_shapes(size, depth):
    model = ConvVAE(size=size, width=0.125, latent=8, depth=depth)
    with torch.no_grad():
        recon, mu, logvar = model(torch.rand(3, 3, size, size))
    assert recon.shape == (3, 3, size, size) and mu.shape == logvar.shape == (3, 8)
    assert 0 <= float(recon.min()) and float(recon.max()) <= 1


def test_bad_inputs_get_clear_errors():
    with pytest.raises(ValueError, match="multiple of 2\\*\\*depth"):
        ConvVAE(size=24, depth=4)
    with pytest.raises(ValueError, match="shape \\(N, 3, 16, 16\\)"):
        tiny()(torch.rand(2, 1, 16, 16))
    with pytest.raises(ValueError, match="latent vectors"):
        tiny().decode(torch.randn(2, 5))
    bad = torch.rand(4, 3, 16, 16)
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        train_vae(bad, epochs=1, width=0.125, latent=8, depth=4, progress=False)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        train_vae(torch.full((4, 3, 16, 16), 2.0), epochs=1, depth=4, progress=False)
    with pytest.raises(ValueError, match="mapping"):
        train_vae_per_class([torch.rand(4, 3, 16, 16)], 1)


def test_loss_is_bce_plus_kld():
    x = torch.rand(4, 3, 16, 16)
    recon = torch.rand(4, 3, 16, 16).clamp(0.01, 0.99)
    mu, logvar = torch.zeros(4, 8), torch.zeros(4, 8)
    total, bce, kld = vae_loss(recon, x, mu, logvar)
    assert float(kld) == pytest.approx(0.0)                       # q = prior -> no divergence
    assert float(total) == pytest.approx(float(bce))
    _, _, kld2 = vae_loss(recon, x, torch.ones(4, 8), torch.zeros(4, 8))
    assert float(kld2) == pytest.approx(0.5 * 8)                  # KL(N(1, 1) || N(0, 1)) = 1/2 per unit


def test_one_step_lowers_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = tiny()
    x = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss() -> torch.Tensor:
        recon, mu, logvar = model(x, generator=torch.Generator().manual_seed(1))   # same eps both times
        return vae_loss(recon, x, mu, logvar)[0]

    before = loss()
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss()
    assert float(after) < float(before.detach())


def test_training_resumes_exactly(tmp_path):
    images = torch.rand(10, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    kw = dict(width=0.125, latent=8, depth=4, batch_size=4, progress=False)
    full = train_vae(images, epochs=3, **kw)
    path = tmp_path / "vae.pt"
    train_vae(images, epochs=2, checkpoint=path, checkpoint_every=1, **kw)
    resumed = train_vae(images, epochs=3, checkpoint=path, **kw)
    assert resumed.resumed_from == 2 and len(resumed.epochs) == 3
    assert resumed.column("loss") == pytest.approx(full.column("loss"))
    for a, b in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.allclose(a, b)
    assert train_vae(images, epochs=3, checkpoint=path, **kw).resumed_from == 3


def test_nan_loss_stops_training(monkeypatch):
    monkeypatch.setattr(conv_vae, "vae_loss", lambda r, x, m, l: (r.sum() * float("nan"),) * 3)
    with pytest.raises(TrainingDiverged, match="NaN"):
        train_vae(torch.rand(6, 3, 16, 16), epochs=2, width=0.125, latent=8, depth=4, batch_size=4, progress=False)


def test_one_vae_per_class_cached_and_sampled(cache):
    g = torch.Generator().manual_seed(1)
    data = {"a": torch.rand(6, 3, 16, 16, generator=g), "b": torch.rand(5, 3, 16, 16, generator=g)}
    kw = dict(width=0.125, latent=8, depth=4, batch_size=4, progress=False)
    runs = train_vae_per_class(data, 2, **kw)
    assert set(runs) == {"a", "b"} and all(len(r.epochs) == 2 for r in runs.values())
    assert len(list((cache / "checkpoints").glob("conv-vae-*.pt"))) == 2
    again = train_vae_per_class(data, 2, **kw)
    assert all(r.resumed_from == 2 for r in again.values())
    images = sample(again["a"].model, 7, seed=3)
    assert images.shape == (7, 3, 16, 16) and 0 <= float(images.min()) and float(images.max()) <= 1
    assert torch.equal(images, sample(again["a"].model, 7, seed=3))       # seeded
    assert not torch.equal(images, sample(again["a"].model, 7, seed=4))
    assert throughput(again["a"].model, n=16, repeats=1) > 0
