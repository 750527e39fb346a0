"""The framework autoencoder of notebook 01: the same 3 -> h -> h -> 3 layout in PyTorch
(document 000 used Keras; we use PyTorch with Adam and a mean-squared-error loss, as Keras'
``compile(optimizer="adam", loss="mse")`` would), and the width sweeps behind Tables I and II."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from course_lib.data.bioprocess import Splits
from course_lib.models.numpy_autoencoder import DivergedError, NumpyAutoencoder, energy, error_norm, train_numpy
from course_lib.train import TrainingDiverged, evaluate, fit

TORCH_ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "linear": nn.Identity}


class DenseAutoencoder(nn.Module):
    """n_inputs -> hidden -> ... -> n_inputs dense layers with one activation per layer.

    With the default activations: 3 -> h (ReLU) -> h (ReLU) -> 3 (Linear), the layout of
    :class:`course_lib.models.numpy_autoencoder.NumpyAutoencoder` (see that module for the reading).
    """

    def __init__(self, hidden: int, activations: tuple[str, ...] = ("relu", "relu", "linear"), n_inputs: int = 3):
        super().__init__()
        if isinstance(hidden, bool) or not isinstance(hidden, (int, np.integer)) or hidden < 1:
            raise ValueError(f"hidden width must be a whole number of at least 1, got {hidden!r}")
        unknown = [a for a in activations if a not in TORCH_ACTIVATIONS]
        if unknown or len(activations) < 2:
            raise ValueError(f"activations must be at least two of {sorted(TORCH_ACTIVATIONS)}, got {activations}")
        self.activations = tuple(activations)
        widths = [n_inputs] + [int(hidden)] * (len(activations) - 1) + [n_inputs]
        layers: list[nn.Module] = []
        for n_in, n_out, act in zip(widths[:-1], widths[1:], activations):
            layers += [nn.Linear(n_in, n_out), TORCH_ACTIVATIONS[act]()]  # (N, n_in) -> (N, n_out)
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of a batch (N, 3)."""
        return self.net(x)

    def linear_layers(self) -> list[nn.Linear]:
        """The weight layers, first to last."""
        return [m for m in self.net if isinstance(m, nn.Linear)]

    @classmethod
    def from_numpy(cls, model: NumpyAutoencoder) -> "DenseAutoencoder":
        """The same network as a NumPy autoencoder, with copies of its weights (float64)."""
        hidden = model.weights[0].shape[1]
        net = cls(hidden, model.activations, n_inputs=model.n_inputs).double()
        with torch.no_grad():
            for lin, W, b in zip(net.linear_layers(), model.weights, model.biases):
                if lin.weight.shape != W.T.shape:
                    raise ValueError(f"layer shapes differ: {tuple(lin.weight.shape)} vs. W^T {W.T.shape}")
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))  # nn.Linear keeps (n_out, n_in)
                lin.bias.copy_(torch.from_numpy(b))
        return net


def sweep_numpy(splits: Splits, widths: list[int], *, epochs: int, lr: float, batch_size: int | None = 16,
                seeds: tuple[int, ...] = (0,),
                activations: tuple[str, ...] = ("relu", "relu", "linear")) -> pd.DataFrame:
    """Table I for our run: test energy and validation error per hidden width (mean, std, min, max over seeds).

    Columns: ``energy_test`` (E on the test rows), ``validation_error`` (mean Euclidean length of the
    reconstruction error on the validation rows; the document's "validation error" is undefined) and
    ``energy_validation`` (E on the validation rows), each with ``_std``, ``_min`` and ``_max`` over seeds.
    """
    rows = []
    for h in widths:
        for seed in seeds:
            model = NumpyAutoencoder.create(h, activations, seed=seed)
            try:
                train_numpy(model, splits.train, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
            except DivergedError as exc:
                raise DivergedError(f"hidden width {h}, seed {seed}: {exc}") from None
            rows.append({"hidden_neurons": h, "seed": seed,
                         "energy_test": energy(model(splits.test), splits.test),
                         "validation_error": error_norm(model(splits.validation), splits.validation),
                         "energy_validation": energy(model(splits.validation), splits.validation)})
    runs = pd.DataFrame(rows)
    metrics = ["energy_test", "validation_error", "energy_validation"]
    table = runs.groupby("hidden_neurons")[metrics].agg(["mean", "std", "min", "max"])
    out = pd.DataFrame({"hidden_neurons": table.index})
    for metric in metrics:
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
                seeds: tuple[int, ...] = (0,), progress: bool = False,
                activations: tuple[str, ...] = ("relu", "relu", "linear")) -> pd.DataFrame:
    """Table II for our run: train / test / validation MSE per hidden width (mean over seeds), Adam at ``lr``."""
    tensors = {k: torch.tensor(getattr(splits, k), dtype=torch.float32) for k in ("train", "test", "validation")}
    rows = []
    for h in widths:
        for seed in seeds:
            torch.manual_seed(seed)  # the initial weights depend on the seed only
            model = DenseAutoencoder(h, activations)
            try:
                fit(model, (tensors["train"], tensors["train"]), epochs=epochs, loss="mse", lr=lr,
                    batch_size=batch_size, seed=seed, progress=progress)
            except TrainingDiverged as exc:
                raise TrainingDiverged(f"hidden width {h}, seed {seed}: {exc}") from None
            rows.append({"hidden_neurons": h, "seed": seed,
                         **{f"{split}_loss": evaluate(model, tensors[split], tensors[split], loss="mse")["loss"]
                            for split in ("train", "test", "validation")}})
    runs = pd.DataFrame(rows)
    return runs.groupby("hidden_neurons", as_index=False)[["train_loss", "test_loss", "validation_loss"]].mean()


def best_width(table: pd.DataFrame, column: str) -> int:
    """The hidden width with the lowest value in ``column``."""
    return int(table.loc[table[column].idxmin(), "hidden_neurons"])



__all__ = ["DenseAutoencoder", "sweep_numpy", "sweep_torch", "best_width",
           "indistinguishable_from_best"]
