"""The per-class DCGAN of notebook 05 (document 001, Table 2): layers, init, label noise, training, resume."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib.models import sign_dcgan
from course_lib.models.sign_dcgan import (SignDiscriminator, SignGenerator, generate, init_weights, noisy_targets,
                                          param_count, sign_gan_step, throughput, train_sign_dcgan,
                                          train_sign_dcgan_per_class)
from course_lib.train import TrainingDiverged


def signs(n: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_full_size_layers_match_table2():
    G, D = SignGenerator(), SignDiscriminator()          # latent 256, 64x64x3, FEATURES = 64, dropout 0.2
    deconvs = [m for m in G.net if isinstance(m, nn.ConvTranspose2d)]
    assert [m.out_channels for m in deconvs] == [512, 256, 128, 64, 3]
    assert deconvs[0].in_channels == 256 and deconvs[0].stride == (1, 1) and deconvs[0].padding == (0, 0)
    assert all(m.kernel_size == (4, 4) and m.stride == (2, 2) and m.padding == (1, 1) for m in deconvs[1:])
    assert [m.num_features for m in G.net if isinstance(m, nn.BatchNorm2d)] == [512, 256, 128, 64]
    assert sum(isinstance(m, nn.ReLU) for m in G.net) == 4 and isinstance(G.net[-1], nn.Tanh)

    layers = list(D.net)
    conv_at = [i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)]
    assert [layers[i].out_channels for i in conv_at] == [64, 128, 256, 512, 1]
    assert layers[conv_at[-1]].kernel_size == (4, 4) and layers[conv_at[-1]].stride == (1, 1)
    # what follows each hidden conv, up to the next conv: (BatchNorm?) LeakyReLU(0.2) Dropout(0.2)
    for layer, (a, b) in enumerate(zip(conv_at[:-1], conv_at[1:]), start=1):
        block = layers[a + 1:b]
        kinds = [type(m) for m in block]
        expected = [nn.LeakyReLU, nn.Dropout] if layer == 1 else [nn.BatchNorm2d, nn.LeakyReLU, nn.Dropout]
        assert kinds == expected, f"discriminator layer {layer}: {kinds}"
        assert block[-2].negative_slope == 0.2 and block[-1].p == 0.2
    assert isinstance(D.prob, nn.Sigmoid)

    G.eval(), D.eval()
    with torch.no_grad():
        x = G(torch.randn(2, 256))
        p = D(x)
    assert x.shape == (2, 3, 64, 64) and -1 <= float(x.min()) and float(x.max()) <= 1
    assert p.shape == (2,) and bool(((p > 0) & (p < 1)).all())

    # parameters counted from Table 2's layer list, kernel 4x4 everywhere; BatchNorm has a scale and a shift;
    # convolutions followed by BatchNorm carry no bias, the others (G output, D layer 1, D output) do
    w, z, c, k = 64, 256, 3, 16
    g = (z * 8 * w * k + 2 * 8 * w
         + 8 * w * 4 * w * k + 2 * 4 * w
         + 4 * w * 2 * w * k + 2 * 2 * w
         + 2 * w * w * k + 2 * w
         + w * c * k + c)
    d = (c * w * k + w
         + w * 2 * w * k + 2 * 2 * w
         + 2 * w * 4 * w * k + 2 * 4 * w
         + 4 * w * 8 * w * k + 2 * 8 * w
         + 8 * w * 1 * k + 1)
    assert param_count(G) == g == 4_854_659
    assert param_count(D) == d == 2_765_633


@pytest.mark.parametrize("size,layers", [(16, 3), (32, 4), (128, 6)])
def test_other_sizes(size, layers):
    G, D = SignGenerator(8, size, 3, width=4), SignDiscriminator(size, 3, width=4)
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in G.modules()) == layers
    assert sum(isinstance(m, nn.Conv2d) for m in D.modules()) == layers
    with torch.no_grad():
        x = G(torch.randn(3, 8))
    assert x.shape == (3, 3, size, size) and D(x).shape == (3,)


def test_bad_sizes_and_inputs():
    for size in (48, 8, 64.0):
        with pytest.raises(ValueError, match="power of two of at least 16"):
            SignGenerator(size=size)
    with pytest.raises(ValueError, match="power of two"):
        SignDiscriminator(size=48)
    with pytest.raises(ValueError, match="latent vectors of shape \\(N, 8\\)"):
        SignGenerator(8, 16, width=4)(torch.randn(2, 5))
    with pytest.raises(ValueError, match="shape \\(N, 3, 16, 16\\)"):
        SignDiscriminator(16, width=4)(torch.rand(2, 1, 16, 16))
    with pytest.raises(ValueError, match="dropout"):
        SignDiscriminator(dropout=1.0)
    with pytest.raises(ValueError, match="positive"):
        SignGenerator(width=0)
    kw = dict(latent=8, width=4, progress=False)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        train_sign_dcgan(torch.full((4, 3, 16, 16), 2.0), epochs=1, **kw)
    with pytest.raises(ValueError, match="square"):
        train_sign_dcgan(torch.rand(4, 3, 16, 32), epochs=1, **kw)
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        train_sign_dcgan(signs(4), epochs=0, **kw)
    with pytest.raises(ValueError, match="at least 2 images"):
        train_sign_dcgan(signs(1), epochs=1, **kw)
    with pytest.raises(ValueError, match="label_noise"):
        noisy_targets(4, True, 0.7)
    with pytest.raises(ValueError, match="at least 1"):
        generate(SignGenerator(8, 16, width=4), 0)


def test_init_weights_follow_the_document():
    torch.manual_seed(0)
    G, D = SignGenerator(), SignDiscriminator()
    G.apply(init_weights), D.apply(init_weights)
    conv = torch.cat([m.weight.detach().flatten() for m in [*G.modules(), *D.modules()]
                      if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    assert abs(float(conv.mean())) < 1e-3 and float(conv.std()) == pytest.approx(0.02, rel=0.02)
    bn = torch.cat([m.weight.detach() for m in [*G.modules(), *D.modules()] if isinstance(m, nn.BatchNorm2d)])
    assert float(bn.mean()) == pytest.approx(1.0, abs=2e-3) and float(bn.std()) == pytest.approx(0.02, rel=0.1)
    assert all(float(m.bias.detach().abs().max()) == 0 for m in G.modules() if isinstance(m, nn.BatchNorm2d))


def test_label_noise_ranges():
    gen = torch.Generator().manual_seed(0)
    real, fake = noisy_targets(1000, True, 0.1, gen), noisy_targets(1000, False, 0.1, gen)
    assert float(real.min()) >= 0.9 and float(real.max()) <= 1 and len(real.unique()) > 1
    assert float(fake.min()) >= 0 and float(fake.max()) <= 0.1 and len(fake.unique()) > 1
    assert float(real.mean()) == pytest.approx(0.95, abs=0.01) and float(fake.mean()) == pytest.approx(0.05, abs=0.01)
    assert torch.equal(noisy_targets(5, True, 0.0), torch.ones(5))
    assert torch.equal(noisy_targets(5, False, 0.0), torch.zeros(5))


def test_one_step_lowers_the_discriminator_loss():
    torch.manual_seed(0)
    G, D = SignGenerator(16, 16, 3, width=4), SignDiscriminator(16, 3, width=4, dropout=0.0)
    G.apply(init_weights), D.apply(init_weights)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real, z = signs(8) * 2 - 1, torch.randn(8, 16)
    bce = nn.functional.binary_cross_entropy            # Table 2's Sigmoid + BCE, on probabilities

    def loss_d() -> float:
        with torch.no_grad():
            return float(bce(D(real), torch.ones(8)) + bce(D(fake), torch.zeros(8)))

    with torch.no_grad():
        fake = G(z)                                      # the batch D sees inside the step (G in train mode)
    before = loss_d()
    out = sign_gan_step(G, D, opt_g, opt_d, real, z, label_noise=0.0)
    assert out["loss_d"] == pytest.approx(before, rel=1e-4)   # BCE-with-logits = Sigmoid + BCE
    assert loss_d() < before


def test_training_resumes_and_loads(tmp_path):
    images = signs(10)
    kw = dict(latent=8, width=4, batch_size=4, progress=False)
    full = train_sign_dcgan(images, epochs=3, **kw)
    path = tmp_path / "g.pt"
    two = train_sign_dcgan(images, epochs=2, checkpoint=path, checkpoint_every=1, **kw)
    assert two.resumed_from == 0 and len(two.epochs) == 2
    assert set(two.epochs[0]) == {"epoch", "loss_d", "loss_g", "d_real", "d_fake"}
    resumed = train_sign_dcgan(images, epochs=3, checkpoint=path, **kw)
    assert resumed.resumed_from == 2 and len(resumed.epochs) == 3
    assert resumed.column("loss_d") == pytest.approx(full.column("loss_d"))      # same as one straight run
    for a, b in zip(full.G.parameters(), resumed.G.parameters()):
        assert torch.allclose(a, b)
    mtime = path.stat().st_mtime_ns
    loaded = train_sign_dcgan(images, epochs=3, checkpoint=path, **kw)
    assert loaded.resumed_from == 3 and loaded.epochs == resumed.epochs and path.stat().st_mtime_ns == mtime
    for a, b in zip(loaded.G.state_dict().values(), resumed.G.state_dict().values()):
        assert torch.equal(a, b)
    fresh = train_sign_dcgan(images, epochs=1, checkpoint=path, retrain=True, **kw)
    assert fresh.resumed_from == 0 and len(fresh.epochs) == 1


def test_batches_are_near_equal_so_batchnorm_never_sees_a_tiny_leftover(monkeypatch):
    sizes = []
    real_step = sign_dcgan.sign_gan_step

    def recording(G, D, opt_g, opt_d, real, *args, **kwargs):
        sizes.append(len(real))
        return real_step(G, D, opt_g, opt_d, real, *args, **kwargs)

    monkeypatch.setattr(sign_dcgan, "sign_gan_step", recording)
    run = train_sign_dcgan(signs(5), epochs=1, latent=8, width=4, batch_size=4, progress=False)  # 3 + 2, not 4 + 1
    assert sorted(sizes) == [2, 3] and len(run.epochs) == 1 and all(v == v for v in run.epochs[0].values())


def test_nan_stops_training(monkeypatch):
    monkeypatch.setattr(sign_dcgan, "sign_gan_step", lambda *a, **k: {"loss_d": float("nan"), "loss_g": 1.0})
    with pytest.raises(TrainingDiverged, match="NaN"):
        train_sign_dcgan(signs(6), epochs=2, latent=8, width=4, batch_size=4, progress=False)


def test_per_class_with_epoch_mapping(cache, capsys):
    data = {"stop": signs(6, seed=1), "yield": signs(3, seed=2)}
    kw = dict(latent=8, width=4, batch_size=4)
    runs = train_sign_dcgan_per_class(data, {"stop": 1, "yield": 2}, progress=False, **kw)
    assert [len(runs[c].epochs) for c in data] == [1, 2]
    assert not torch.equal(runs["stop"].G.net[0].weight, runs["yield"].G.net[0].weight)  # seed + k per class
    again = train_sign_dcgan_per_class(data, {"stop": 2, "yield": 2}, progress=True, **kw)
    out = capsys.readouterr().out
    assert "stop: loaded 1 trained epochs from the cache, continued to 2." in out
    assert "yield: loaded 2 trained epochs from the cache." in out
    assert again["stop"].resumed_from == 1 and len(again["stop"].epochs) == 2
    assert again["yield"].epochs == runs["yield"].epochs
    other = train_sign_dcgan_per_class(data, 1, label_noise=0.0, progress=False, **kw)   # other settings, other file
    assert all(r.resumed_from == 0 for r in other.values())


def test_per_class_bad_inputs(cache):
    kw = dict(latent=8, width=4, progress=False)
    with pytest.raises(ValueError, match="non-empty mapping"):
        train_sign_dcgan_per_class({}, 1, **kw)
    with pytest.raises(ValueError, match="no entry for class"):
        train_sign_dcgan_per_class({"a": signs(4), "b": signs(4)}, {"a": 1}, **kw)
    with pytest.raises(ValueError, match="at least 1"):
        train_sign_dcgan_per_class({"a": signs(4)}, {"a": 0}, **kw)
    with pytest.raises(ValueError, match="class 'a' has 1 image"):
        train_sign_dcgan_per_class({"a": signs(1)}, 1, **kw)
    with pytest.raises(ValueError, match=r"class 'b': pixels must be in \[0, 1\]"):
        train_sign_dcgan_per_class({"a": signs(4), "b": signs(4) + 1}, 1, **kw)


def test_generate_and_throughput():
    torch.manual_seed(0)
    G = SignGenerator(8, 16, 3, width=4)
    G.apply(init_weights)
    x = generate(G, 7, seed=1, batch_size=3)
    assert x.shape == (7, 3, 16, 16) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert not G.training
    assert torch.equal(x, generate(G, 7, seed=1)) and not torch.equal(x, generate(G, 7, seed=2))
    assert throughput(G, n=16, repeats=1, threads=1) > 0
