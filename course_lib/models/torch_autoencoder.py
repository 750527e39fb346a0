"""The framework autoencoder of notebook 01: the same 3 -> h -> h -> 3 layout in PyTorch
(document 000 used Keras; we use PyTorch with Adam and a mean-squared-error loss, as Keras'
``compile(optimizer="adam", loss="mse")`` would), and the width sweeps behind Tables I and II."""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from course_lib.data.bioprocess import Splits
from course_lib.models.numpy_autoencoder import NumpyAutoencoder, energy, error_norm, train_numpy
from course_lib.train import evaluate, fit

TORCH_ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "linear": nn.Identity}


class DenseAutoencoder(nn.Module):
    """n_inputs -> hidden -> ... -> n_inputs dense layers with one activation per layer."""

    def __init__(self, hidden: int, activations: tuple[str, ...] = ("relu", "relu", "linear"), n_inputs: int = 3):
        super().__init__()
        if hidden < 1:
            raise ValueError(f"hidden width must be at least 1, got {hidden}")
        widths = [n_inputs] + [hidden] * (len(activations) - 1) + [n_inputs]
        layers: list[nn.Module] = []
        for n_in, n_out, act in zip(widths[:-1], widths[1:], activations):
            layers += [nn.Linear(n_in, n_out), TORCH_ACTIVATIONS[act]()]  # (N, n_in) -> (N, n_out)
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of a batch (N, 3)."""
        return self.net(x)


def sweep_numpy(splits: Splits, widths: list[int], *, epochs: int, lr: float, batch_size: int = 16,
                seeds: tuple[int, ...] = (0,), activations: tuple[str, ...] = ("relu", "relu", "linear")) -> pd.DataFrame:
    """Table I for our run: test energy and validation error per hidden width (mean, std, min, max over seeds)."""
    rows = []
    for h in widths:
        for seed in seeds:
            model = NumpyAutoencoder.create(h, activations, seed=seed)
            train_numpy(model, splits.train, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
            rows.append({"hidden_neurons": h, "seed": seed,
                         "energy_test": energy(model(splits.test), splits.test),
                         "validation_error": error_norm(model(splits.validation), splits.validation)})
    runs = pd.DataFrame(rows)
    table = runs.groupby("hidden_neurons")[["energy_test", "validation_error"]].agg(["mean", "std", "min", "max"])
    out = pd.DataFrame({"hidden_neurons": table.index})
    for metric in ("energy_test", "validation_error"):
        out[metric] = table[(metric, "mean")].to_numpy()
        out[f"{metric}_std"] = table[(metric, "std")].fillna(0).to_numpy()
        out[f"{metric}_min"] = table[(metric, "min")].to_numpy()
        out[f"{metric}_max"] = table[(metric, "max")].to_numpy()
    return out


def indistinguishable_from_best(table: pd.DataFrame, metric: str = "energy_test") -> list[int]:
    """Widths whose range over seeds (min..max of ``metric``) overlaps the range of the best width."""
    best = table.loc[table[metric].idxmin()]
    overlaps = table[f"{metric}_min"] <= best[f"{metric}_max"]
    return [int(h) for h in table.loc[overlaps, "hidden_neurons"]]


def sweep_torch(splits: Splits, widths: list[int], *, epochs: int, lr: float = 1e-2, batch_size: int = 16,
                seeds: tuple[int, ...] = (0,), progress: bool = False) -> pd.DataFrame:
    """Table II for our run: train / test / validation MSE per hidden width (mean over seeds)."""
    tensors = {k: torch.tensor(getattr(splits, k), dtype=torch.float32) for k in ("train", "test", "validation")}
    rows = []
    for h in widths:
        for seed in seeds:
            torch.manual_seed(seed)
            model = DenseAutoencoder(h)
            fit(model, (tensors["train"], tensors["train"]), epochs=epochs, loss="mse", lr=lr,
                batch_size=batch_size, seed=seed, progress=progress)
            rows.append({"hidden_neurons": h, "seed": seed,
                         **{f"{k}_loss": evaluate(model, tensors[split], tensors[split], loss="mse")["loss"]
                            for k, split in (("train", "train"), ("test", "test"), ("validation", "validation"))}})
    runs = pd.DataFrame(rows)
    return runs.groupby("hidden_neurons", as_index=False)[["train_loss", "test_loss", "validation_loss"]].mean()


def best_width(table: pd.DataFrame, column: str) -> int:
    """The hidden width with the lowest value in ``column``."""
    return int(table.loc[table[column].idxmin(), "hidden_neurons"])


__all__ = ["DenseAutoencoder", "sweep_numpy", "sweep_torch", "best_width", "indistinguishable_from_best"]
