import numpy as np
import pytest
import torch

from course_lib.metrics import LeNetFeatures, feature_fid, threshold_split
from course_lib.models.gan import Discriminator, GanHistory, Generator, _collapse_alert, gan_step, sample, train_gan
from course_lib.models.lenet import LeNet5
from course_lib.train import TrainingDiverged
from course_lib.widgets import snapshot_slider, threshold_explorer


def test_shapes():
    G, D = Generator(latent=16, width=8), Discriminator(width=8)
    images = G(torch.randn(5, 16))
    assert images.shape == (5, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
    assert D(images).shape == (5,) and D.score(images).shape == (5,)
    assert sample(G, 7).shape == (7, 1, 28, 28)


def test_one_step_lowers_the_discriminator_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    G, D = Generator(latent=16, width=8), Discriminator(width=8)
    real = torch.rand(32, 1, 28, 28) ** 4  # a fixed batch of 'real' images
    z = torch.randn(32, 16)
    bce = torch.nn.functional.binary_cross_entropy_with_logits

    def d_loss():
        D.eval(), G.eval()
        with torch.no_grad():
            fake = G(z)
            return float(bce(D(real), torch.ones(32)) + bce(D(fake), torch.zeros(32)))

    before = d_loss()
    G.train(), D.train()
    opt_g = torch.optim.Adam(G.parameters(), lr=0)  # freeze G: only D's update counts here
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3)
    out = gan_step(G, D, opt_g, opt_d, real, z)
    assert set(out) == {"loss_d", "loss_g", "d_real", "d_fake"}
    assert d_loss() < before


def test_training_checkpoints_and_resumes(tmp_path):
    images = torch.rand(64, 1, 28, 28)
    torch.manual_seed(0)
    G, D = Generator(16, 8), Discriminator(8)
    hist = train_gan(G, D, images, epochs=2, batch_size=32, checkpoint=tmp_path / "gan.pt", progress=False,
                     evaluate=lambda g: {"probe": 1.0})
    assert [e["epoch"] for e in hist.epochs] == [1, 2] and sorted(hist.grids) == [1, 2]
    assert hist.epochs[0]["probe"] == 1.0
    G2, D2 = Generator(16, 8), Discriminator(8)
    again = train_gan(G2, D2, images, epochs=3, batch_size=32, checkpoint=tmp_path / "gan.pt", progress=False)
    assert len(again.epochs) == 3  # two loaded, one more trained
    assert torch.load(tmp_path / "gan.pt", weights_only=True)["epochs"][-1]["epoch"] == 3


def test_nan_is_reported(tmp_path):
    G, D = Generator(16, 8), Discriminator(8)
    with pytest.raises(TrainingDiverged, match="NaN"):
        train_gan(G, D, torch.full((64, 1, 28, 28), float("nan")), epochs=1, batch_size=32, progress=False)


def test_collapse_alerts():
    won = GanHistory([{"epoch": i, "d_real": 0.999, "d_fake": 0.001, "loss_d": 0.01} for i in range(1, 6)])
    assert "wins outright" in _collapse_alert(won, patience=5)
    assert _collapse_alert(won, patience=6) is None
    healthy = GanHistory([{"epoch": i, "d_real": 0.8, "d_fake": 0.2, "loss_d": 0.9} for i in range(1, 6)])
    assert _collapse_alert(healthy, patience=5) is None


def test_threshold_split_on_known_scores():
    assert threshold_split([0.1, 0.6, 0.7, 0.4, 0.9, 0.2]) == {"above": 0.5, "below": 0.5}
    assert threshold_split(np.array([0.1, 0.6, 0.7]), threshold=0.65)["above"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        threshold_split([], 0.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        threshold_split([0.2], 2.0)


def test_feature_fid_zero_for_identical_sets_and_grows_with_a_shift():
    torch.manual_seed(0)
    features = LeNetFeatures(LeNet5())
    real = torch.rand(200, 1, 28, 28)
    same = feature_fid(real, real.clone(), features)
    shifted = feature_fid(real, (real + 0.3).clamp(0, 1), features)
    assert abs(same) < 1e-3 and shifted > 100 * max(abs(same), 1e-6)


def test_threshold_and_snapshot_widgets_update():
    ui = threshold_explorer({"a": np.array([0.1, 0.6, 0.9]), "b": np.array([0.4])}, {"above": 0.67, "below": 0.33})
    before = (ui.image.value, ui.info.value)
    ui.controls["threshold"].value = 0.8
    assert ui.image.value != before[0] and ui.info.value != before[1] and "0.80" in ui.info.value
    slider = snapshot_slider({1: torch.rand(4, 1, 28, 28), 5: torch.rand(4, 1, 28, 28)})
    first = slider.image.value
    slider.controls["epoch"].value = 1
    assert slider.image.value != first
