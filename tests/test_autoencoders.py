import numpy as np
import pandas as pd
import pytest
import torch

from course_lib.data.bioprocess import make_process_dataset, split_and_scale
from course_lib.models.numpy_autoencoder import (DivergedError, dead_units, NumpyAutoencoder, energy, error_norm,
                                                 gradient_check, train_numpy)
from course_lib.models.torch_autoencoder import (DenseAutoencoder, best_width, indistinguishable_from_best,
                                               sweep_numpy, sweep_torch)
from course_lib.widgets import autoencoder_explorer


@pytest.fixture(scope="module")
def splits():
    return split_and_scale(make_process_dataset(1, n_samples=60), seed=0)


@pytest.mark.parametrize("hidden", [1, 2, 7, 12])
@pytest.mark.parametrize("activations", [("relu", "relu", "linear"), ("tanh", "sigmoid", "linear"),
                                         ("sigmoid", "relu", "tanh")])
def test_hand_gradients_match_autograd(hidden, activations, splits):
    model = NumpyAutoencoder.create(hidden, activations, seed=hidden)
    assert gradient_check(model, splits.train) < 1e-6


@pytest.mark.parametrize("activations", [("relu", "linear"),  # the other reading: 3 -> h -> 3
                                         ("tanh", "relu", "sigmoid", "linear")])  # a deeper one
def test_gradient_check_other_depths(activations, splits):
    model = NumpyAutoencoder.create(5, activations, seed=1)
    assert len(model.weights) == len(activations)
    assert gradient_check(model, splits.test) < 1e-6


def test_gradient_check_after_training(splits):
    # after training some ReLU units are dead and gradients are small: the check must still hold
    model = NumpyAutoencoder.create(9, seed=3)
    train_numpy(model, splits.train, epochs=30, lr=0.05)
    assert gradient_check(model, splits.train) < 1e-6


def test_gradient_check_catches_a_wrong_gradient(splits, monkeypatch):
    model = NumpyAutoencoder.create(5, seed=0)
    original = model.gradients

    def off_by_a_bit(x):
        e, gw, gb = original(x)
        gb[0] = gb[0] * 1.01  # a faulty bias gradient, as the document suspected of its own code
        return e, gw, gb

    monkeypatch.setattr(model, "gradients", off_by_a_bit)
    assert gradient_check(model, splits.train) > 1e-3


def test_energy_and_error_norm_by_hand():
    x = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    y_hat = np.array([[1.0, 0.0, 0.0], [1.0, 3.0, 1.0]])
    # errors: (1,0,0) and (0,2,0): E = 1/(2*2) * (1 + 4) = 1.25; mean norm = (1 + 2) / 2
    assert energy(y_hat, x) == pytest.approx(1.25)
    assert error_norm(y_hat, x) == pytest.approx(1.5)
    # the same by the formula written out, and 1.5 x the mean-squared error for three outputs
    assert energy(y_hat, x) == pytest.approx(sum(0.5 * np.sum((y_hat[n] - x[n]) ** 2) for n in range(2)) / 2)
    assert energy(y_hat, x) == pytest.approx(1.5 * np.mean((y_hat - x) ** 2))
    with pytest.raises(ValueError, match="same|shape|both"):
        energy(y_hat[:, :2], x)  # no silent broadcasting


def test_training_lowers_energy_and_records_gradients(splits):
    model = NumpyAutoencoder.create(7, seed=0)
    before = energy(model(splits.train), splits.train)
    hist = train_numpy(model, splits.train, epochs=100, lr=0.05, batch_size=8, test=splits.test)
    assert hist.train_energy[-1] < before / 10
    gw, gb = hist.grad_norm_array()
    steps = 100 * int(np.ceil(len(splits.train) / 8))
    assert gw.shape == gb.shape == (steps, 3) and np.isfinite(gw).all()


def test_full_batch_training_is_deterministic(splits):
    runs = []
    for _ in range(2):
        model = NumpyAutoencoder.create(5, seed=4)
        hist = train_numpy(model, splits.train, epochs=40, lr=0.1, batch_size=None, test=splits.test,
                           validation=splits.validation, seed=4)
        runs.append((model, hist))
    (m1, h1), (m2, h2) = runs
    assert h1.train_energy == h2.train_energy and all(np.array_equal(a, b) for a, b in zip(m1.weights, m2.weights))
    assert len(h1.train_energy) == len(h1.test_energy) == len(h1.validation_energy) == 40
    gw, gb = h1.grad_norm_array()
    assert gw.shape == gb.shape == (40, 3)  # full batch: one update step per epoch
    assert h1.train_energy[-1] < h1.train_energy[0]


def test_too_large_learning_rate_stops_with_a_message(splits):
    model = NumpyAutoencoder.create(12, ("linear", "linear", "linear"), seed=0)
    with pytest.raises(DivergedError, match=r"in epoch \d+ of 10; lower the learning rate \(now 1.0\)"):
        train_numpy(model, splits.train, epochs=10, lr=1.0)


def test_bad_settings_are_refused(splits):
    for bad in (0, -2, 2.5):
        with pytest.raises(ValueError, match="hidden width"):
            NumpyAutoencoder.create(bad)
        with pytest.raises(ValueError, match="hidden width"):
            DenseAutoencoder(bad)
    with pytest.raises(ValueError, match="activations"):
        NumpyAutoencoder.create(3, ("relu", "swish", "linear"))
    with pytest.raises(ValueError, match="activations"):
        DenseAutoencoder(3, ("relu", "swish", "linear"))
    model = NumpyAutoencoder.create(3)
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        model(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        train_numpy(model, np.full((4, 3), np.nan), epochs=1, lr=0.1)


def test_sweeps_give_one_row_per_width(splits):
    t1 = sweep_numpy(splits, [1, 5, 9], epochs=20, lr=0.05, seeds=(0, 1))
    assert list(t1.hidden_neurons) == [1, 5, 9]
    assert {"energy_test", "validation_error", "energy_validation", "energy_test_std"} <= set(t1.columns)
    t2 = sweep_torch(splits, [2, 5], epochs=5)
    assert list(t2.hidden_neurons) == [2, 5] and (t2[["train_loss", "test_loss", "validation_loss"]] > 0).all().all()
    assert best_width(t1, "energy_test") in (1, 5, 9)
    t3 = sweep_torch(splits, [1, 2, 5, 7, 9, 12], epochs=2)
    assert list(t3.hidden_neurons) == [1, 2, 5, 7, 9, 12] and len(t3) == 6
    pd.testing.assert_frame_equal(t3, sweep_torch(splits, [1, 2, 5, 7, 9, 12], epochs=2))  # deterministic


def test_numpy_sweep_names_the_width_that_diverged(splits):
    with pytest.raises(DivergedError, match="hidden width 12, seed 0"):
        sweep_numpy(splits, [12], epochs=10, lr=1.0, activations=("linear", "linear", "linear"))


def test_torch_autoencoder_shapes_and_layout():
    model = DenseAutoencoder(9)
    assert model(torch.zeros(4, 3)).shape == (4, 3)
    assert [tuple(lin.weight.shape) for lin in model.linear_layers()] == [(9, 3), (9, 9), (3, 9)]
    twin = NumpyAutoencoder.create(9, seed=0)
    assert [w.shape for w in twin.weights] == [(3, 9), (9, 9), (9, 3)]


def test_torch_twin_computes_the_same_function(splits):
    model = NumpyAutoencoder.create(7, ("tanh", "relu", "linear"), seed=2)
    net = DenseAutoencoder.from_numpy(model)
    with torch.no_grad():
        out = net(torch.tensor(splits.test, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(out, model(splits.test), rtol=1e-12, atol=1e-12)


def test_autoencoder_widget_retrains_on_every_control(splits):
    other = split_and_scale(make_process_dataset(2, n_samples=60), seed=0)
    ui = autoencoder_explorer({"one": splits, "two": other})
    ui.controls["epochs"].value = 20  # keep the test fast
    assert "Table I" in ui.info.value  # width 7 has a row in the document's table
    for name, value in (("hidden", 3), ("f1", "tanh"), ("lr", 0.2), ("data", "two"), ("azimuth", 30)):
        before = (ui.image.value, ui.info.value)
        ui.controls[name].value = value
        assert ui.image.value != before[0], f"picture unchanged after {name}"
    assert "Table I" not in ui.info.value  # no document row for width 3


def test_autoencoder_widget_reports_divergence(splits):
    ui = autoencoder_explorer({"one": split_and_scale(make_process_dataset(1, n_samples=60))})
    ui.controls["epochs"].value = 10
    ui.controls["hidden"].value = 12
    ui.controls["f1"].value = "linear"
    ui.controls["f2"].value = "linear"
    ui.controls["lr"].value = 1.0  # diverges with three linear layers: a message, never an exception
    assert "Training diverged" in ui.info.value and "lower the learning rate" in ui.info.value


def test_dead_units_counts_relu_units_silent_on_every_row():
    model = NumpyAutoencoder.create(4, seed=0)
    x = np.random.default_rng(0).random((10, 3))
    model.biases[0][:2] = -100.0  # two units of layer 1 can never fire on inputs in [0, 1]
    assert dead_units(model, x)[0] >= 2
    model.biases[0][:] = 100.0
    assert dead_units(model, x)[0] == 0


def test_indistinguishable_widths_use_the_ranges_over_seeds():
    table = pd.DataFrame({"hidden_neurons": [1, 5, 7], "energy_test": [0.5, 0.10, 0.12],
                          "energy_test_min": [0.4, 0.08, 0.09], "energy_test_max": [0.6, 0.11, 0.20]})
    assert indistinguishable_from_best(table) == [5, 7]  # 7's best run beats 5's worst run
    table.loc[2, "energy_test_min"] = 0.115
    assert indistinguishable_from_best(table) == [5]


def test_autoencoder_widget_view_angle_redraws_without_retraining(splits):
    from course_lib.widgets import BUSY_TEXT
    ui = autoencoder_explorer({"one": splits})
    ui.controls["epochs"].value = 20
    trained, picture, table = ui.trainings(), ui.image.value, ui.info.value
    during = []
    ui.image.observe(lambda _c: during.append((ui.busy.value, ui.controls["azimuth"].disabled)), names="value")
    ui.controls["azimuth"].value = 45
    assert ui.trainings() == trained, "turning the view retrained the network"
    assert ui.image.value != picture and ui.info.value == table
    assert during == [(BUSY_TEXT, True)] and ui.busy.value == "" and not ui.controls["azimuth"].disabled
    ui.controls["hidden"].value = 5
    assert ui.trainings() == trained + 1
    ui.controls["hidden"].value = 7  # back to settings trained a moment ago: reused, the same table
    assert ui.trainings() == trained + 1 and ui.info.value == table
    assert ui.controls["lr"].style.description_width == "initial"  # "learning rate" in full, not "learning r..."
