"""A from-scratch NumPy autoencoder with hand-derived backpropagation (notebook 01).

Layout, our reading of document 000 ("ReLU, ReLU, Linear"): three weight layers
3 -> h -> h -> 3, with activations f1 = ReLU, f2 = ReLU, f3 = Linear by default; the hidden width h
is what the document sweeps (1, 2, 5, 7, 9, 12). Any activation per layer can be chosen.

Notation (one row per sample, N samples in a batch):
    a_0 = x,   z_l = a_{l-1} W_l + b_l,   a_l = f_l(z_l),   y_hat = a_L
"Energy" (the document never defines it): the classic sum-of-squared-errors energy,
    E = 1/(2N) * sum_n sum_j (y_hat_nj - x_nj)^2
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# activation: (f(z), f'(z))
ACTIVATIONS = {
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(z.dtype)),
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda z: (s := 1 / (1 + np.exp(-z))) * (1 - s)),
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "linear": (lambda z: z, np.ones_like),
}


class DivergedError(RuntimeError):
    """The energy became NaN or infinite during training."""


def energy(y_hat: np.ndarray, x: np.ndarray) -> float:
    """E = 1/(2N) sum_n sum_j (y_hat_nj - x_nj)^2, the mean over samples of half the squared error."""
    return float(0.5 * np.sum((y_hat - x) ** 2) / len(x))


def error_norm(y_hat: np.ndarray, x: np.ndarray) -> float:
    """Mean Euclidean length of the reconstruction error, (1/N) sum_n ||y_hat_n - x_n||."""
    return float(np.mean(np.linalg.norm(y_hat - x, axis=1)))


@dataclass
class NumpyAutoencoder:
    """Weights W_l (n_in, n_out), biases b_l (n_out,) and one activation name per layer."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    activations: tuple[str, ...]

    @classmethod
    def create(cls, hidden: int, activations: tuple[str, ...] = ("relu", "relu", "linear"),
               n_inputs: int = 3, seed: int = 0) -> "NumpyAutoencoder":
        """A new network n_inputs -> hidden -> ... -> n_inputs, He-initialised for ReLU layers."""
        if not isinstance(hidden, (int, np.integer)) or hidden < 1:
            raise ValueError(f"hidden width must be a whole number of at least 1, got {hidden!r}")
        unknown = [a for a in activations if a not in ACTIVATIONS]
        if unknown or len(activations) < 2:
            raise ValueError(f"activations must be at least two of {sorted(ACTIVATIONS)}, got {activations}")
        widths = [n_inputs] + [int(hidden)] * (len(activations) - 1) + [n_inputs]
        rng = np.random.default_rng(seed)
        weights, biases = [], []
        for n_in, n_out, act in zip(widths[:-1], widths[1:], activations):
            scale = np.sqrt(2.0 / n_in) if act == "relu" else np.sqrt(1.0 / n_in)
            weights.append(rng.normal(0.0, scale, (n_in, n_out)))
            # a small positive bias keeps ReLU units alive at the start
            biases.append(np.full(n_out, 0.01 if act == "relu" else 0.0))
        return cls(weights, biases, tuple(activations))

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """Output y_hat, pre-activations z_l and activations a_l (a_0 = x) for a batch x of (N, 3)."""
        a, zs, acts = x, [], [x]
        for W, b, name in zip(self.weights, self.biases, self.activations):
            # z_l = a_{l-1} W_l + b_l
            z = a @ W + b
            # a_l = f_l(z_l)
            a = ACTIVATIONS[name][0](z)
            zs.append(z)
            acts.append(a)
        return a, zs, acts

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)[0]

    def gradients(self, x: np.ndarray) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
        """Energy E and its hand-derived gradients dE/dW_l, dE/db_l for the batch x (target = x)."""
        y_hat, zs, acts = self.forward(x)
        n = len(x)
        # dE/dy_hat = (y_hat - x) / N, and through the last activation:
        # delta_L = (y_hat - x) / N * f_L'(z_L)
        delta = (y_hat - x) / n * ACTIVATIONS[self.activations[-1]][1](zs[-1])
        grad_w: list[np.ndarray] = [np.empty(0)] * len(self.weights)
        grad_b: list[np.ndarray] = [np.empty(0)] * len(self.weights)
        for l in reversed(range(len(self.weights))):
            # dE/dW_l = a_{l-1}^T delta_l ;  dE/db_l = sum over samples of delta_l
            grad_w[l] = acts[l].T @ delta
            grad_b[l] = delta.sum(axis=0)
            if l > 0:
                # delta_{l-1} = (delta_l W_l^T) * f_{l-1}'(z_{l-1})
                delta = (delta @ self.weights[l].T) * ACTIVATIONS[self.activations[l - 1]][1](zs[l - 1])
        return energy(y_hat, x), grad_w, grad_b


@dataclass
class NumpyHistory:
    """Energies per epoch and gradient norms per update step."""

    train_energy: list[float] = field(default_factory=list)
    test_energy: list[float] = field(default_factory=list)
    validation_energy: list[float] = field(default_factory=list)
    grad_norms_w: list[np.ndarray] = field(default_factory=list)  # per step: (n_layers,) ||dE/dW_l||
    grad_norms_b: list[np.ndarray] = field(default_factory=list)  # per step: (n_layers,) ||dE/db_l||

    def grad_norm_array(self) -> tuple[np.ndarray, np.ndarray]:
        """Gradient norms as arrays of shape (steps, layers) for weights and biases."""
        return np.array(self.grad_norms_w), np.array(self.grad_norms_b)


def train_numpy(model: NumpyAutoencoder, train: np.ndarray, *, epochs: int, lr: float, batch_size: int = 16,
                test: np.ndarray | None = None, validation: np.ndarray | None = None, seed: int = 0) -> NumpyHistory:
    """Mini-batch gradient descent on the energy; records energies and per-layer gradient norms."""
    if epochs < 1 or lr <= 0 or batch_size < 1:
        raise ValueError(f"need epochs >= 1, lr > 0 and batch_size >= 1; got {epochs}, {lr}, {batch_size}")
    rng = np.random.default_rng(seed)
    history = NumpyHistory()
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is detected and reported below
        for epoch in range(epochs):
            _train_epoch(model, train, lr, batch_size, rng, history)
            e_train = energy(model(train), train)
            if not np.isfinite(e_train):
                raise DivergedError(f"the energy became {e_train} in epoch {epoch + 1}; lower the learning rate "
                                    f"(now {lr}) or check the data is scaled to [0, 1]")
            history.train_energy.append(e_train)
            if test is not None:
                history.test_energy.append(energy(model(test), test))
            if validation is not None:
                history.validation_energy.append(energy(model(validation), validation))
    return history


def _train_epoch(model: NumpyAutoencoder, train: np.ndarray, lr: float, batch_size: int,
                 rng: np.random.Generator, history: NumpyHistory) -> None:
    """One pass over the shuffled training rows in mini-batches."""
    order = rng.permutation(len(train))
    for i in range(0, len(train), batch_size):
        _, grad_w, grad_b = model.gradients(train[order[i:i + batch_size]])
        for l in range(len(model.weights)):
            # gradient descent: W_l <- W_l - eta dE/dW_l, b_l <- b_l - eta dE/db_l
            model.weights[l] -= lr * grad_w[l]
            model.biases[l] -= lr * grad_b[l]
        history.grad_norms_w.append(np.array([np.linalg.norm(g) for g in grad_w]))
        history.grad_norms_b.append(np.array([np.linalg.norm(g) for g in grad_b]))


def dead_units(model: NumpyAutoencoder, x: np.ndarray) -> list[int]:
    """Per hidden layer, how many ReLU units output zero for every row of ``x`` (they no longer learn)."""
    _, _, acts = model.forward(x)
    return [int(np.sum(np.all(a <= 0, axis=0))) if name == "relu" else 0
            for a, name in zip(acts[1:-1], model.activations[:-1])]


def autograd_gradients(model: NumpyAutoencoder, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The same energy's gradients computed by PyTorch autograd (float64) on the same weights."""
    import torch
    torch_act = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "linear": lambda z: z}
    ws = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in model.weights]
    bs = [torch.tensor(b, dtype=torch.float64, requires_grad=True) for b in model.biases]
    target = torch.tensor(x, dtype=torch.float64)
    a = target
    for W, b, name in zip(ws, bs, model.activations):
        a = torch_act[name](a @ W + b)
    e = 0.5 * ((a - target) ** 2).sum() / len(x)
    e.backward()
    return [w.grad.numpy() for w in ws], [b.grad.numpy() for b in bs]


def gradient_check(model: NumpyAutoencoder, x: np.ndarray) -> float:
    """Largest relative difference between the hand-written and the autograd gradients."""
    _, hand_w, hand_b = model.gradients(np.asarray(x, dtype=np.float64))
    auto_w, auto_b = autograd_gradients(model, np.asarray(x, dtype=np.float64))
    worst = 0.0
    for h, a in zip(hand_w + hand_b, auto_w + auto_b):
        worst = max(worst, float(np.max(np.abs(h - a)) / max(np.max(np.abs(a)), 1e-12)))
    return worst
