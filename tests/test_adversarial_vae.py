"""Document 003's two-step adversarial VAE: shapes, losses against their formulas, the training steps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_lib.models import adversarial_vae as av
from course_lib.train import TrainingDiverged

TINY = dict(width=2, hidden=8, cls_hidden=8, dis_width=2, dis_hidden=8)


def _data(n: int = 32, classes: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = torch.rand(n, 1, 28, 28, generator=g) * 0.2
    for c in range(classes):  # each class lights up its own band, so classes are learnable
        x[y == c, :, 4 + 8 * c:10 + 8 * c, :] += 0.7
    return x.clamp(0, 1), y


def test_shapes():
    m = av.AdversarialVAE.build(latent=2, n_classes=3, **TINY)
    x = torch.rand(5, 1, 28, 28)
    mu, logvar, feats = m.encoder.forward_with_features(x)
    assert mu.shape == logvar.shape == (5, 2)
    assert [tuple(f.shape) for f in feats] == [(5, 2, 28, 28), (5, 2, 28, 28), (5, 4, 14, 14)]
    assert [f.shape for f in m.encoder.features(x)] == [f.shape for f in feats]
    assert m.classifier(mu).shape == (5, 3)
    assert torch.allclose(m.classifier.proba(mu).sum(1), torch.ones(5))
    out = m.decoder(mu)
    assert out.shape == (5, 1, 28, 28) and out.min() >= 0 and out.max() <= 1
    assert m.discriminator(x).shape == (5,)
    rgb = av.AdversarialVAE.build(in_channels=3, latent=100, n_classes=10, **TINY)
    assert rgb.decoder(torch.randn(4, 100)).shape == (4, 3, 28, 28)


def test_bad_input_gets_clear_errors():
    m = av.AdversarialVAE.build(**TINY)
    with pytest.raises(ValueError, match=r"expected images \(N, 1, 28, 28\)"):
        m.encoder(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="latent vectors"):
        m.decoder(torch.rand(2, 5))
    with pytest.raises(ValueError, match="width must be a positive int"):
        av.Encoder(width=0)
    with pytest.raises(ValueError, match="2-D latent"):
        av.latent_grid(av.Decoder(latent=3, width=2, hidden=8))


def test_reparameterize_eq1():
    mu, logvar = torch.tensor([[1.0, -2.0]]), torch.tensor([[0.0, math.log(4.0)]])
    eps = torch.randn(1, 2, generator=torch.Generator().manual_seed(3))
    z = av.reparameterize(mu, logvar, torch.Generator().manual_seed(3))
    assert torch.allclose(z, mu + torch.tensor([[1.0, 2.0]]) * eps)


def test_kl_eq4_matches_closed_form_and_torch_distributions():
    mu = torch.tensor([[0.5, -1.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.2, -0.3], [0.0, 0.0]])
    by_hand = 0.5 * ((logvar.exp() + mu ** 2 - 1 - logvar).sum(1)).mean()
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros(2), torch.ones(2))
    assert torch.isclose(av.kl_loss(mu, logvar), by_hand)
    assert torch.isclose(av.kl_loss(mu, logvar), torch.distributions.kl_divergence(q, p).sum(1).mean())
    assert av.kl_loss(torch.zeros(3, 2), torch.zeros(3, 2)) == 0


def test_categorical_eq7_and_vec_eq6():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    y = torch.tensor([0, 2])
    p = torch.softmax(logits, 1)
    expected = -(math.log(p[0, 0]) + math.log(p[1, 2])) / 2
    assert math.isclose(av.categorical_loss(logits, y).item(), expected, rel_tol=1e-6)
    mu, logvar = torch.ones(2, 2), torch.zeros(2, 2)
    total, parts = av.vec_loss(mu, logvar, logits, y)
    assert math.isclose(total.item(), parts["kl"] + parts["cat"], rel_tol=1e-6)
    assert math.isclose(parts["kl"], 1.0, rel_tol=1e-6)  # 0.5 * (1 + 1) per image


def test_feature_reconstruction_eq9():
    real = [torch.zeros(2, 1, 2, 2), torch.zeros(2, 3), torch.zeros(2, 1)]
    fake = [torch.ones(2, 1, 2, 2), torch.full((2, 3), 2.0), torch.full((2, 1), 3.0)]
    # per-element means: 1, 4, 9 -> 1*1 + 0.1*4 + 0.01*9
    assert math.isclose(av.feature_reconstruction_loss(real, fake).item(), 1 + 0.4 + 0.09, rel_tol=1e-6)
    assert math.isclose(av.feature_reconstruction_loss(real, fake, (1, 1, 1)).item(), 14.0, rel_tol=1e-6)
    with pytest.raises(ValueError, match="as many alphas"):
        av.feature_reconstruction_loss(real, fake, (1.0,))


def test_adversarial_eq10_latent_eq11_decoder_eq8():
    assert math.isclose(av.adversarial_loss(torch.tensor([1.0, 1.0]), torch.tensor([-1.0, 0.0])).item(), (4 + 1) / 2)
    pz = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    pzh = torch.tensor([[0.0, 1.0], [0.5, 0.5]])
    assert math.isclose(av.latent_loss(pz, pzh).item(), (2.0 + 0.0) / 2)
    total = av.decoder_loss(torch.tensor(1.0), torch.tensor(2.0), torch.tensor(3.0), beta=0.1, gamma=0.5)
    assert math.isclose(total.item(), 1 + 0.2 + 1.5, rel_tol=1e-6)


def test_discriminator_targets_are_plus_and_minus_one():
    assert (av.REAL_TARGET, av.FAKE_TARGET) == (1.0, -1.0)
    scores = torch.tensor([1.0, 0.0, -1.0])
    assert math.isclose(av.discriminator_loss(scores, av.REAL_TARGET).item(), (0 + 1 + 4) / 3, rel_tol=1e-6)
    assert math.isclose(av.discriminator_loss(scores, av.FAKE_TARGET).item(), (4 + 1 + 0) / 3, rel_tol=1e-6)
    with pytest.raises(ValueError, match="targets"):
        av.discriminator_loss(scores, 0.0)


def test_step2_uses_plus_minus_one_targets(monkeypatch):
    seen = []
    original = av.discriminator_loss

    def spy(scores, target):
        seen.append(target)
        return original(scores, target)

    monkeypatch.setattr(av, "discriminator_loss", spy)
    x, y = _data(16)
    m = av.AdversarialVAE.build(n_classes=3, **TINY)
    av.train_step2(m, x, epochs=1, beta=0.1, gamma=0.0, n_dis=2, batch_size=8, progress=False)
    # 2 batches x n_dis=2 x (real, fake)
    assert seen == [1.0, -1.0] * 4


def test_step2_leaves_encoder_and_classifier_unchanged():
    x, y = _data(24)
    m = av.AdversarialVAE.build(n_classes=3, **TINY)
    av.train_step1(m, x, y, epochs=1, batch_size=8, progress=False)
    before = {k: {n: t.clone() for n, t in mod.state_dict().items()} for k, mod in
              (("enc", m.encoder), ("clf", m.classifier))}
    dec_before = [p.clone() for p in m.decoder.parameters()]
    av.train_step2(m, x, epochs=1, beta=0.1, gamma=0.1, batch_size=8, progress=False)
    for key, mod in (("enc", m.encoder), ("clf", m.classifier)):
        for name, tensor in mod.state_dict().items():
            assert torch.equal(tensor, before[key][name]), f"{key}.{name} changed in step 2"
    assert any(not torch.equal(a, b) for a, b in zip(dec_before, m.decoder.parameters())), "the decoder trains"


def test_one_step_lowers_the_loss_on_a_fixed_batch():
    x, y = _data(16)
    m = av.AdversarialVAE.build(n_classes=3, **TINY)
    enc, clf = m.encoder, m.classifier
    opt = torch.optim.Adam([*enc.parameters(), *clf.parameters()], lr=1e-2)
    enc.eval(), clf.eval()  # fixed batch-norm statistics, no sampling noise: compare like with like

    def vec_value():
        mu, logvar = enc(x)
        return av.vec_loss(mu, logvar, clf(mu), y)[0]

    before = vec_value()
    opt.zero_grad()
    before.backward()
    opt.step()
    assert vec_value().item() < before.item()

    # step 2: one decoder update lowers eq. 9 on the same batch (beta = gamma = 0, deterministic code)
    av.freeze(enc, clf)
    dec = m.decoder.eval()
    opt_d = torch.optim.Adam(dec.parameters(), lr=1e-2)
    with torch.no_grad():
        mu, _, real_feats = enc.forward_with_features(x)

    def rec_value():
        return av.feature_reconstruction_loss(real_feats, enc.features(dec(mu)))

    r0 = rec_value()
    opt_d.zero_grad()
    r0.backward()
    opt_d.step()
    assert rec_value().item() < r0.item()


def test_training_checkpoints_resume_and_load(tmp_path):
    x, y = _data(16)
    path = tmp_path / "vec.pt"
    m1 = av.AdversarialVAE.build(n_classes=3, **TINY)
    h1 = av.train_step1(m1, x, y, epochs=2, batch_size=8, checkpoint=path, progress=False, val=(x, y))
    assert len(h1) == 2 and "val_accuracy" in h1.epochs[-1] and path.exists()
    m2 = av.AdversarialVAE.build(n_classes=3, seed=5, **TINY)
    h2 = av.train_step1(m2, x, y, epochs=2, batch_size=8, checkpoint=path, progress=False)
    assert h2.resumed_from == 2
    for a, b in zip(m1.encoder.state_dict().values(), m2.encoder.state_dict().values()):
        assert torch.equal(a, b)
    # an interrupted run (1 epoch saved) continues to the same result as an uninterrupted one
    m3 = av.AdversarialVAE.build(n_classes=3, **TINY)
    av.train_step1(m3, x, y, epochs=1, batch_size=8, checkpoint=tmp_path / "r.pt", progress=False)
    m4 = av.AdversarialVAE.build(n_classes=3, seed=9, **TINY)
    av.train_step1(m4, x, y, epochs=2, batch_size=8, checkpoint=tmp_path / "r.pt", progress=False)
    for a, b in zip(m1.encoder.parameters(), m4.encoder.parameters()):
        assert torch.allclose(a, b)


def test_nan_stops_training():
    x, y = _data(16)
    x[0, 0, 0, 0] = float("nan")
    m = av.AdversarialVAE.build(n_classes=3, **TINY)
    with pytest.raises(TrainingDiverged, match="NaN"):
        av.train_step1(m, x, y, epochs=1, batch_size=16, progress=False)


def test_plain_vae_trains_and_scores():
    x, y = _data(16)
    vae = av.PlainVAE(latent=2, width=2, hidden=8)
    h = av.train_vae(vae, x, epochs=2, batch_size=8, progress=False)
    assert len(h) == 2 and np.isfinite(h.last("loss"))
    assert vae(x).shape == x.shape
    # eq. 2 by hand on one pair
    xh = torch.full_like(x[:2], 0.5)
    total, parts = av.vae_loss(x[:2], xh, torch.zeros(2, 2), torch.zeros(2, 2))
    assert math.isclose(parts["rec"], 784 * math.log(2), rel_tol=1e-5) and parts["kl"] == 0


def test_measurements():
    sharp = torch.zeros(1, 1, 8, 8)
    sharp[0, 0, ::2, ::2] = 1.0
    blurry = torch.full((1, 1, 8, 8), 0.25)
    assert av.laplacian_variance(sharp) > av.laplacian_variance(blurry) == 0
    x, y = _data(12)
    m = av.AdversarialVAE.build(n_classes=3, **TINY)
    s = av.reconstruction_scores(m, x, y)
    assert set(s) == {"pixel_mse", "class_agreement", "sharpness", "recon_label_accuracy"}
    same = av.reconstruction_scores(m, x, y, x_hat=x, judge=torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 3)))
    assert same["pixel_mse"] == 0 and same["class_agreement"] == 1.0 and same["judge_agreement"] == 1.0
    images, points = av.latent_grid(m.decoder, -1, 1, 3)
    assert images.shape == (9, 1, 28, 28) and points.shape == (9, 2)
    assert points[0].tolist() == [-1, 1] and points[-1].tolist() == [1, -1]


def test_latent_explorer_updates():
    from course_lib.latent_widgets import latent_explorer
    m = av.AdversarialVAE.build(n_classes=3, **TINY)
    codes = np.random.default_rng(0).normal(size=(30, 2))
    ui = latent_explorer(m, codes, np.arange(30) % 3, ["a", "b", "c"])
    before_image, before_info = ui.image.value, ui.info.value
    ui.controls["z1"].value = 1.0
    assert ui.image.value != before_image and ui.info.value != before_info
    with pytest.raises(ValueError, match="2-D codes"):
        latent_explorer(m, np.zeros((3, 5)), np.zeros(3), ["a"])


def test_beta_gamma_browser_updates():
    from course_lib.latent_widgets import beta_gamma_browser
    x = torch.rand(4, 1, 28, 28)
    cells = {(0.0, 0.0): {"images": x * 0.5, "scores": {"pixel_mse": 0.1}},
             (0.1, 0.0): {"images": x * 0.9, "scores": {"pixel_mse": 0.2}},
             (0.1, 0.1): {"images": x, "scores": {"pixel_mse": 0.3}}}
    ui = beta_gamma_browser(x, cells)
    before = ui.image.value, ui.info.value
    ui.controls["beta"].value = 0.1
    assert ui.image.value != before[0] and "0.2" in ui.info.value
    ui.controls["beta"].value = 0.0
    ui.controls["gamma"].value = 0.1  # (0, 0.1) was not trained
    assert "not trained" in ui.info.value
    with pytest.raises(ValueError, match="at least one"):
        beta_gamma_browser(x, {})


def test_run_experiment_and_baseline_reload_from_cache(cache):
    x, y = _data(24)
    kwargs = dict(latent=2, cells=[(0.0, 0.0), (0.1, 0.1)], width=2, hidden=8, kl_weight=0.1, vec_epochs=1,
                  dec_epochs=1, batch_size=8, n_eval=6, progress=False)
    exp = av.run_experiment("toy", (x, y), (x, y), 3, **kwargs)
    assert list(exp.scores.index) == [(0.0, 0.0), (0.1, 0.1)] and exp.latent == 2
    assert {"pixel_mse", "class_agreement", "sharpness"} <= set(exp.scores.columns)
    assert exp.recon[(0.1, 0.1)].shape == (6, 1, 28, 28) and 0 <= exp.test_accuracy <= 1
    vae, hist, scores = av.run_baseline(exp, x, epochs=1, width=2, hidden=8, batch_size=8, progress=False)
    assert "pixel_mse" in scores and len(hist) == 1
    again = av.run_experiment("toy", (x, y), (x, y), 3, **kwargs)  # everything loads from the checkpoints
    assert again.step1.resumed_from == 1 and all(h.resumed_from == 1 for _, h in again.cells.values())
    assert torch.equal(again.recon[(0.1, 0.1)], exp.recon[(0.1, 0.1)])


def test_class_centre_neighbours_finds_the_nearest_centre():
    # three tight clusters: 0 and 1 close together, 2 far away
    codes = torch.tensor([[0.0, 0.0], [0.2, 0.0], [1.0, 0.0], [1.2, 0.0], [10.0, 0.0], [10.0, 0.2]])
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    nearest, distance = av.class_centre_neighbours(codes, labels)
    assert nearest == {0: 1, 1: 0, 2: 1}
    assert distance[0] == pytest.approx(1.0) and distance[2] == pytest.approx(math.hypot(8.9, 0.1))
    with pytest.raises(ValueError, match="at least two classes"):
        av.class_centre_neighbours(codes[:2], labels[:2])
    with pytest.raises(ValueError, match="expected codes"):
        av.class_centre_neighbours(codes, labels[:3])


def test_widget_callbacks_draw_without_pyplot(monkeypatch):
    # a pyplot figure made in a callback leaks '<Figure size ... with 0 Axes>' into JupyterLab's log
    import matplotlib.pyplot as plt

    from course_lib.latent_widgets import beta_gamma_browser, latent_explorer
    m = av.AdversarialVAE.build(n_classes=3, **TINY)
    x = torch.rand(4, 1, 28, 28)
    explorer = latent_explorer(m, np.random.default_rng(0).normal(size=(30, 2)), np.arange(30) % 3, ["a", "b", "c"])
    browser = beta_gamma_browser(x, {(0.0, 0.0): {"images": x * 0.5, "scores": {}},
                                     (0.1, 0.0): {"images": x, "scores": {}}})

    def no_pyplot(*args: object, **kwargs: object) -> None:
        raise AssertionError("a widget callback made a pyplot figure")

    monkeypatch.setattr(plt, "figure", no_pyplot)
    monkeypatch.setattr(plt, "subplots", no_pyplot)
    explorer.controls["z1"].value = 0.5
    browser.controls["beta"].value = 0.1
    assert explorer.image.value and browser.image.value
