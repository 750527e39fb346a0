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


def test_training_lowers_energy_and_records_gradients(splits):
    model = NumpyAutoencoder.create(7, seed=0)
    before = energy(model(splits.train), splits.train)
    hist = train_numpy(model, splits.train, epochs=100, lr=0.05, batch_size=8, test=splits.test)
    assert hist.train_energy[-1] < before / 10
    gw, gb = hist.grad_norm_array()
    steps = 100 * int(np.ceil(len(splits.train) / 8))
    assert gw.shape == gb.shape == (steps, 3) and np.isfinite(gw).all()


def test_too_large_learning_rate_stops_with_a_message(splits):
    model = NumpyAutoencoder.create(12, ("linear", "linear", "linear"), seed=0)
    with pytest.raises(DivergedError, match="lower the learning rate"):
        train_numpy(model, splits.train, epochs=10, lr=1.0)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="hidden width"):
        NumpyAutoencoder.create(0)
    with pytest.raises(ValueError, match="activations"):
        NumpyAutoencoder.create(3, ("relu", "swish", "linear"))


def test_sweeps_give_one_row_per_width(splits):
    t1 = sweep_numpy(splits, [1, 5], epochs=20, lr=0.05, seeds=(0, 1))
    assert list(t1.hidden_neurons) == [1, 5] and {"energy_test", "validation_error"} <= set(t1.columns)
    t2 = sweep_torch(splits, [2, 5], epochs=5)
    assert list(t2.hidden_neurons) == [2, 5] and (t2[["train_loss", "test_loss", "validation_loss"]] > 0).all().all()
    assert best_width(t1, "energy_test") in (1, 5)


def test_torch_autoencoder_shapes():
    model = DenseAutoencoder(9)
    assert model(torch.zeros(4, 3)).shape == (4, 3)


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
