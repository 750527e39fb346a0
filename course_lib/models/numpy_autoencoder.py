"""A from-scratch NumPy autoencoder with hand-derived backpropagation (notebook 01).

Layout, our reading of document 000: the self-coded network "was configured with ReLU, ReLU,
Linear activation functions" (section IV-A) and the Keras one varies "the number of neurons in the
hidden layers" (plural). We read that as three weight layers, two hidden layers of the swept width h:

    3 --W1,b1--> h  (f1 = ReLU)  --W2,b2--> h  (f2 = ReLU)  --W3,b3--> 3  (f3 = Linear)

so h in (1, 2, 5, 7, 9, 12) is the width of both hidden layers. The other plausible reading,
3 -> h (ReLU) -> 3 (ReLU) -> 3 (Linear), is one call away: the layer widths follow the number of
activations, and each activation is a parameter ('relu', 'sigmoid', 'tanh', 'linear').

Notation (one row per sample, N samples in a batch, l = 1..L layers):
    a_0 = x,   z_l = a_{l-1} W_l + b_l,   a_l = f_l(z_l),   y_hat = a_L      W_l: (n_{l-1}, n_l)
"Energy" (the document never defines it): the classic sum-of-squared-errors energy of a network,
half the squared reconstruction error summed over the three outputs, averaged over the samples,
    E = 1/(2N) * sum_n sum_j (y_hat_nj - x_nj)^2
For three outputs E = 1.5 x the mean-squared-error loss a framework reports (mean over all entries).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from course_lib.train import TrainingDiverged

# activation: (f(z), f'(z))
ACTIVATIONS = {
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(z.dtype)),
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda z: (s := 1 / (1 + np.exp(-z))) * (1 - s)),
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "linear": (lambda z: z, np.ones_like),
}


# Ours: an energy above this many times the larger of the starting energy and the energy of an all-zero
# output means gradient descent is running away (it only ever grows that much when every step
# overshoots); training stops there instead of counting up to 1e300 before reaching infinity.
EXPLODED_FACTOR = 1e3


class DivergedError(TrainingDiverged):
    """The energy became NaN or infinite, or exploded, during training (a :class:`TrainingDiverged`)."""


def _same_shape(y_hat: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both as float arrays of one shape (N, n_outputs), or a clear error (no silent broadcasting)."""
    y_hat, x = np.asarray(y_hat, dtype=float), np.asarray(x, dtype=float)
    if y_hat.shape != x.shape or x.ndim != 2 or len(x) == 0:
        raise ValueError(f"prediction and target must both be (N, n_outputs) with N >= 1; got {y_hat.shape}, {x.shape}")
    return y_hat, x


def energy(y_hat: np.ndarray, x: np.ndarray) -> float:
    """E = 1/(2N) sum_n sum_j (y_hat_nj - x_nj)^2, the mean over samples of half the squared error."""
    y_hat, x = _same_shape(y_hat, x)  # (N, 3) each
    return float(0.5 * np.sum((y_hat - x) ** 2) / len(x))


def error_norm(y_hat: np.ndarray, x: np.ndarray) -> float:
    """Mean Euclidean length of the reconstruction error, (1/N) sum_n ||y_hat_n - x_n||."""
    y_hat, x = _same_shape(y_hat, x)  # (N, 3) each
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
        x = self._check_batch(x)
        a, zs, acts = x, [], [x]
        for W, b, name in zip(self.weights, self.biases, self.activations):
            # z_l = a_{l-1} W_l + b_l: (N, n_{l-1}) @ (n_{l-1}, n_l) + (n_l,) -> (N, n_l)
            z = a @ W + b
            # a_l = f_l(z_l)
            a = ACTIVATIONS[name][0](z)
            zs.append(z)
            acts.append(a)
        return a, zs, acts

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Reconstruction y_hat (N, 3) of a batch x (N, 3)."""
        return self.forward(x)[0]

    @property
    def n_inputs(self) -> int:
        """Number of input (and output) variables."""
        return self.weights[0].shape[0]

    def _check_batch(self, x: np.ndarray) -> np.ndarray:
        """x as a float array of shape (N, n_inputs), or a clear error."""
        x = np.asarray(x, dtype=float)
        if x.ndim != 2 or x.shape[1] != self.n_inputs or len(x) == 0:
            raise ValueError(f"expected a batch of shape (N, {self.n_inputs}) with N >= 1, got {x.shape}")
        return x

    def gradients(self, x: np.ndarray) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
        """Energy E and its hand-derived gradients dE/dW_l, dE/db_l for the batch x (target = x)."""
        x = self._check_batch(x)  # (N, 3), the input and the target
        y_hat, zs, acts = self.forward(x)  # y_hat (N, 3); zs[l-1], acts[l] (N, n_l); acts[0] = x
        n = len(x)
        # E = 1/(2N) sum_n ||y_hat_n - x_n||^2   =>   dE/dy_hat = (y_hat - x) / N          (N, 3)
        # y_hat = f_L(z_L), elementwise        =>   delta_L = dE/dz_L = dE/dy_hat * f_L'(z_L)
        delta = (y_hat - x) / n * ACTIVATIONS[self.activations[-1]][1](zs[-1])  # (N, n_L)
        grad_w: list[np.ndarray] = [np.empty(0)] * len(self.weights)
        grad_b: list[np.ndarray] = [np.empty(0)] * len(self.weights)
        for l in reversed(range(len(self.weights))):  # l is 0-based here: layer l + 1 of the notation
            # z_l = a_{l-1} W_l + b_l   =>   dE/dW_l = a_{l-1}^T delta_l                 (n_{l-1}, n_l)
            grad_w[l] = acts[l].T @ delta
            # b_l is added to every row   =>   dE/db_l = sum over the N rows of delta_l   (n_l,)
            # (a sum, not a mean: the 1/N is already inside delta, so it must not be applied twice)
            grad_b[l] = delta.sum(axis=0)
            if l > 0:
                # dE/da_{l-1} = delta_l W_l^T, and a_{l-1} = f_{l-1}(z_{l-1}) elementwise, so
                # delta_{l-1} = (delta_l W_l^T) * f_{l-1}'(z_{l-1})                       (N, n_{l-1})
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


def train_numpy(model: NumpyAutoencoder, train: np.ndarray, *, epochs: int, lr: float,
                batch_size: int | None = 16, test: np.ndarray | None = None,
                validation: np.ndarray | None = None, seed: int = 0) -> NumpyHistory:
    """Gradient descent on the energy (mini-batch, or full batch with ``batch_size=None``); returns the history.

    Records the train / test / validation energy after every epoch and the per-layer gradient norms
    after every update step. Stops with :class:`DivergedError` (a ``course_lib.train.TrainingDiverged``)
    if the energy becomes NaN or infinite, or grows past :data:`EXPLODED_FACTOR` times its start.
    """
    if batch_size is None:
        batch_size = len(train)
    if epochs < 1 or lr <= 0 or batch_size < 1:
        raise ValueError(f"need epochs >= 1, lr > 0 and batch_size >= 1; got {epochs}, {lr}, {batch_size}")
    train = model._check_batch(train)
    if not np.isfinite(train).all():
        raise ValueError("the training data contain NaN or infinite values")
    rng = np.random.default_rng(seed)
    history = NumpyHistory()
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is detected and reported below
        start = max(energy(model(train), train), energy(np.zeros_like(train), train))
        for epoch in range(epochs):
            _train_epoch(model, train, lr, batch_size, rng, history)
            e_train = energy(model(train), train)
            if not np.isfinite(e_train):
                raise DivergedError(f"the energy became {e_train} in epoch {epoch + 1} of {epochs}; lower the "
                                    f"learning rate (now {lr}) or check the data is scaled to [0, 1]")
            if e_train > EXPLODED_FACTOR * start:
                raise DivergedError(f"the energy exploded to {e_train:.3g} (over {EXPLODED_FACTOR:g} times its "
                                    f"start, {start:.3g}) in epoch {epoch + 1} of {epochs}; lower the learning "
                                    f"rate (now {lr}), e.g. to {lr / 10:g}, or check the data is scaled to [0, 1]")
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
    """The same energy's gradients computed by PyTorch autograd (float64) on the same weights.

    The network is the framework twin, :class:`course_lib.models.torch_autoencoder.DenseAutoencoder`,
    loaded with this model's weights, so the check also confirms that both have the same layout.
    """
    import torch

    from course_lib.models.torch_autoencoder import DenseAutoencoder

    net = DenseAutoencoder.from_numpy(model).double()
    target = torch.tensor(model._check_batch(x), dtype=torch.float64)  # (N, 3)
    y_hat = net(target)  # (N, 3)
    e = 0.5 * ((y_hat - target) ** 2).sum() / len(target)  # the same energy as energy()
    e.backward()
    linears = net.linear_layers()
    # nn.Linear stores W_l transposed, as (n_out, n_in)
    return ([lin.weight.grad.numpy().T for lin in linears], [lin.bias.grad.numpy() for lin in linears])


def gradient_check(model: NumpyAutoencoder, x: np.ndarray) -> float:
    """Largest relative difference between the hand-written and the autograd gradients.

    Per parameter tensor, max |hand - autograd| / max |autograd|, then the worst tensor; both sides
    are computed in float64, so a correct derivation gives about 1e-15 and a wrong one 1e-3 or more.
    """
    _, hand_w, hand_b = model.gradients(np.asarray(x, dtype=np.float64))
    auto_w, auto_b = autograd_gradients(model, np.asarray(x, dtype=np.float64))
    worst = 0.0
    for h, a in zip(hand_w + hand_b, auto_w + auto_b):
        worst = max(worst, float(np.max(np.abs(h - a)) / max(np.max(np.abs(a)), 1e-12)))
    return worst


