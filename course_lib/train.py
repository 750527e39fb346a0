"""One training loop for the course's classifiers and autoencoders.

``fit`` trains on tensors held in memory (shuffled batches by index, no DataLoader overhead),
shows a progress bar, records a per-epoch history, and saves a checkpoint after every epoch
(written atomically, with its SHA-256 beside it) holding the model, the optimizer, the history and the
random-number states. A checkpoint is used only after its checksum, its readability and the finiteness of
its weights are verified; one that fails is reported in one line and trained again.
Calling ``fit`` again with the same checkpoint resumes an interrupted run exactly where it stopped,
or loads a finished one instead of retraining (``retrain=True`` starts over). A NaN or infinite
loss stops training with a message, not a blank plot.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from course_lib.data.cache import atomic_path, cache_dir
from course_lib.data.download import file_digest

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class History:
    """Per-epoch records: each a dict with epoch, train_loss, seconds and any validation metrics."""

    epochs: list[dict] = field(default_factory=list)
    resumed_from: int = 0  # epochs that were loaded from a checkpoint, not trained in this call

    def __len__(self) -> int:
        return len(self.epochs)

    def column(self, key: str) -> list[float]:
        """One metric over the epochs, e.g. ``history.column("val_accuracy")``."""
        return [e[key] for e in self.epochs if key in e]

    def last(self, key: str) -> float:
        """The metric's value at the last epoch."""
        values = self.column(key)
        if not values:
            raise KeyError(f"no metric {key!r} recorded; have {sorted(self.epochs[-1]) if self.epochs else []}")
        return values[-1]


def fingerprint(value: object) -> str:
    """A short SHA-256 of a tensor's, array's or image set's *content* (values, dtype and shape), for cache keys.

    Keys built from a data set's name and size would reload a model trained on other images after
    the images were corrected in place; a content hash cannot.
    """
    import numpy as np
    if hasattr(value, "x") and hasattr(value, "y") and isinstance(getattr(value, "x"), torch.Tensor):
        return fingerprint(value.x) + fingerprint(value.y)  # an ImageSet: its images and labels
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().contiguous().numpy()
    if not isinstance(value, np.ndarray):
        raise TypeError(f"fingerprint takes a tensor, array or image set, got {type(value).__name__}")
    h = hashlib.sha256(f"{value.dtype}{value.shape}".encode())
    h.update(np.ascontiguousarray(value).tobytes())
    return h.hexdigest()[:16]


def _key_value(value: object) -> object:
    """How a config value enters a checkpoint key: data by its content fingerprint, anything else as text."""
    try:
        return fingerprint(value)
    except TypeError:
        return str(value)


def checkpoint_path(name: str, **config: object) -> Path:
    """A checkpoint file in the cache whose name carries a short hash of ``config`` (data values by content)."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=_key_value).encode()).hexdigest()[:10]
    return cache_dir("checkpoints") / f"{name}-{digest}.pt"


def epochs_by_class(epochs: int | Mapping[str, int], classes: Iterable[str]) -> dict[str, int]:
    """Per-class epoch counts from one number for all classes or a mapping class -> epochs (checked)."""
    classes = list(classes)
    per_class = dict(epochs) if isinstance(epochs, Mapping) else {c: epochs for c in classes}
    missing = [c for c in classes if c not in per_class]
    if missing:
        raise ValueError(f"epochs: no entry for class(es) {missing}; give one int or a mapping with every class")
    bad = {c: e for c, e in per_class.items() if not isinstance(e, int) or e < 1}
    if bad:
        raise ValueError(f"epochs must be whole numbers of at least 1, got {bad}")
    return {c: per_class[c] for c in classes}


def even_batches(order: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, ...]:
    """Split shuffled indices into ceil(n / batch_size) batches of near-equal size (34 -> 17 + 17, not 32 + 2).

    BatchNorm learns its running statistics from every batch; a leftover batch of two images would
    pull them far off, and generated images (made in eval mode) would pay for it.
    """
    if batch_size < 1 or len(order) < 1:
        raise ValueError(f"need at least one index and a batch size of at least 1, got {len(order)}, {batch_size}")
    return torch.tensor_split(order, math.ceil(len(order) / batch_size))


def loaded_message(name: str, resumed_from: int, wanted: int) -> str:
    """What a per-class trainer prints when a model came from the cache (and was perhaps trained further)."""
    more = "" if resumed_from >= wanted else f", continued to {wanted}"
    return f"{name}: loaded {resumed_from} trained epochs from the cache{more}."


def checksum_path(path: Path) -> Path:
    """Where the SHA-256 of a saved file is kept: ``<file>.sha256`` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def save_atomic(obj: object, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, rename it into place, then write its SHA-256 beside it.

    Both files are written whole or not at all; a crash between the two leaves a checksum that does
    not match, so the file is not trusted and is made again.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
        digest = file_digest(tmp, "sha256")
    with atomic_path(checksum_path(path)) as tmp:
        tmp.write_text(f"{digest}  {path.name}\n")


def _all_finite(obj: object) -> bool:
    """True when every floating-point tensor inside ``obj`` (nested dicts, lists, tuples) is finite."""
    if isinstance(obj, torch.Tensor):
        return not obj.is_floating_point() or bool(torch.isfinite(obj).all())
    if isinstance(obj, Mapping):
        return all(_all_finite(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(_all_finite(v) for v in obj)
    return True


def untrusted_reason(path: Path, map_location: str | torch.device | None = None) -> tuple[str | None, Any]:
    """(None, contents) when ``path`` matches its checksum, loads with ``weights_only`` and is finite; else (why not, None)."""
    path = Path(path)
    record = checksum_path(path)
    if not record.is_file():
        return f"it has no checksum file {record.name} (written by an older course_lib, or copied without it)", None
    words = record.read_text().split()
    expected = words[0].lower() if words else ""
    actual = file_digest(path, "sha256")
    if actual != expected:
        return f"its SHA-256 is {actual[:12]}..., its checksum file says {expected[:12] or '(empty)'}...", None
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a truncated zip, an empty file, a foreign pickle: all mean "do not use"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"it cannot be read ({type(exc).__name__}: {first[:120]})", None
    if not _all_finite(state):
        return "it holds NaN or infinite values", None
    return None, state


def load_verified(path: Path | str | None, map_location: str | torch.device | None = None) -> Any | None:
    """A saved file's contents if it exists and passes :func:`untrusted_reason`; else None (printing why, in one line).

    Callers treat None as "not cached": they train or compute again and overwrite the bad file.
    """
    if path is None or not Path(path).exists():
        return None
    reason, state = untrusted_reason(Path(path), map_location)
    if reason is not None:
        print(f"Not using {path}: {reason}. Making it again.")
        return None
    return state


def _loss_fn(loss: str | LossFn) -> tuple[LossFn, bool]:
    if callable(loss):
        return loss, False
    if loss == "cross_entropy":
        return nn.functional.cross_entropy, True
    if loss == "mse":
        return nn.functional.mse_loss, False
    if loss == "bce":
        return nn.functional.binary_cross_entropy, False
    raise ValueError(f"loss must be 'cross_entropy', 'mse', 'bce' or a function, got {loss!r}")


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str | LossFn = "cross_entropy",
             batch_size: int = 1000) -> dict[str, float]:
    """Mean loss (and accuracy for classification) of ``model`` on (x, y), in eval mode."""
    fn, classification = _loss_fn(loss)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        out = model(xb)
        total += float(fn(out, yb)) * len(xb)
        if classification:
            correct += int((out.argmax(1) == yb).sum())
    model.train(was_training)
    result = {"loss": total / len(x)}
    if classification:
        result["accuracy"] = correct / len(x)
    return result


def fit(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    *,
    epochs: int,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    loss: str | LossFn = "cross_entropy",
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    checkpoint: Path | str | None = None,
    retrain: bool = False,
    progress: bool = True,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> History:
    """Train ``model`` on in-memory tensors ``train = (x, y)``; for an autoencoder pass ``(x, x)``.

    ``augment``, if given, maps each training batch of inputs to a randomly transformed batch of the
    same shape (e.g. a ``torchvision.transforms.v2`` pipeline); it is not applied to ``val``.
    """
    x, y = train
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"train needs equally many inputs and targets (got {len(x)} and {len(y)}), at least one")
    fn, classification = _loss_fn(loss)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    device = next(model.parameters()).device
    x, y = x.to(device), y.to(device)
    shuffle = torch.Generator().manual_seed(seed)  # our own stream: batches do not depend on other code
    history = History()
    path = Path(checkpoint) if checkpoint is not None else None

    state = load_verified(path, map_location=device) if path is not None and not retrain else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        shuffle.set_state(state["shuffle_rng"])
        torch.set_rng_state(state["torch_rng"])
        history.epochs = list(state["history"])
        history.resumed_from = len(history.epochs)
        if history.resumed_from >= epochs:
            if progress:
                print(f"Loaded a finished run of {history.resumed_from} epochs from {path.name} "
                      f"(asked for {epochs}; pass retrain=True to train again).")
            model.eval()
            return history
        if progress:
            print(f"Resuming from epoch {history.resumed_from} of {epochs} ({path.name}).")
    else:
        torch.manual_seed(seed)  # dropout and other in-model randomness

    n = len(x)
    model.train()
    bar = tqdm(range(history.resumed_from, epochs), desc="epochs", disable=not progress,
               initial=history.resumed_from, total=epochs)
    for epoch in bar:
        start = time.perf_counter()
        order = torch.randperm(n, generator=shuffle).to(device)
        running = torch.zeros((), device=device)
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            optimizer.zero_grad(set_to_none=True)
            xb = x[idx] if augment is None else augment(x[idx])
            batch_loss = fn(model(xb), y[idx])
            batch_loss.backward()
            optimizer.step()
            running += batch_loss.detach() * len(idx)
        train_loss = float(running) / n
        if not torch.isfinite(torch.tensor(train_loss)):
            raise TrainingDiverged(
                f"the training loss became {train_loss} in epoch {epoch + 1}; "
                "try a smaller learning rate, check the inputs for NaN, or normalise the data"
            )
        record = {"epoch": epoch + 1, "train_loss": train_loss}
        if val is not None:
            record.update({f"val_{k}": v for k, v in evaluate(model, *val, loss=loss).items()})
        record["seconds"] = time.perf_counter() - start
        history.epochs.append(record)
        if path is not None:
            save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "shuffle_rng": shuffle.get_state(), "torch_rng": torch.get_rng_state(),
                         "history": history.epochs}, path)
        bar.set_postfix({k: round(v, 4) for k, v in record.items() if k not in ("epoch", "seconds")})
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, record)
    model.eval()
    return history
