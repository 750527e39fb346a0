"""Document 004's classifier experiment: stratified 5-fold cross-validation, test metrics, seeds, arms.

For one *arm* (original images only, or originals plus a synthetic set) and one seed:
the 40-per-class training images are split into 5 stratified folds; for each fold a fresh classifier
(same initial weights for every arm at a given seed and fold) trains on the other four folds plus
the synthetic images (synthetic images never enter a validation fold), and is then scored on the
held-out **test** split. The seed's row is the mean over the five folds, as in the document's
Table 4 (Table 1: Adam lr 2e-4, betas (0.5, 0.999), batch 32, binary cross-entropy, 5 folds).

Metrics (scikit-learn): accuracy; precision, recall and F1 averaged over classes (macro); AUROC one
class vs. the rest, macro; average precision of the one-hot targets, macro.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from course_lib.evolution import torch_threads
from course_lib.train import checkpoint_path, fit, load_verified, save_atomic

METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "auroc", "average_precision")


class SmallCNN(nn.Module):
    """A compact convolutional classifier for (N, C, size, size) images: three conv-BN-pool blocks, two dense layers."""

    def __init__(self, size: int, channels: int = 1, n_classes: int = 4, width: int = 16) -> None:
        super().__init__()
        if size < 8:
            raise ValueError(f"images must be at least 8 px wide, got {size}")
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.BatchNorm2d(4 * width), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(4 * width * 16, 64), nn.ReLU(),
                                  nn.Linear(64, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (N, n_classes)."""
        return self.head(self.features(x))


def bce_one_hot(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Table 1's binary cross-entropy: each class output is a yes/no guess against the one-hot label."""
    return nn.functional.binary_cross_entropy_with_logits(logits, nn.functional.one_hot(y, logits.shape[1]).float())


def classification_metrics(y_true: np.ndarray | torch.Tensor, proba: np.ndarray | torch.Tensor) -> dict[str, float]:
    """Accuracy, macro precision/recall/F1, one-vs-rest macro AUROC, macro average precision."""
    from sklearn.metrics import (accuracy_score, average_precision_score, precision_recall_fscore_support,
                                 roc_auc_score)
    y_true, proba = np.asarray(y_true), np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or len(proba) != len(y_true):
        raise ValueError(f"expected probabilities (N, classes) for N={len(y_true)} labels, got {proba.shape}")
    n_classes = proba.shape[1]
    proba = proba / proba.sum(1, keepdims=True)
    pred = proba.argmax(1)
    labels = list(range(n_classes))
    prec, rec, f1, _ = precision_recall_fscore_support(y_true, pred, labels=labels, average="macro", zero_division=0)
    one_hot = np.eye(n_classes)[y_true]
    return {"accuracy": float(accuracy_score(y_true, pred)), "precision": float(prec), "recall": float(rec),
            "f1": float(f1), "auroc": float(roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=labels)),
            "average_precision": float(average_precision_score(one_hot, proba, average="macro"))}


@torch.no_grad()
def _proba(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    return torch.softmax(model(x), dim=1)


@dataclass
class ArmResult:
    """One arm at one seed: test metrics per fold and learning curves (training loss, validation accuracy per epoch)."""

    arm: str
    seed: int
    folds: list[dict[str, float]] = field(default_factory=list)
    curves: list[dict[str, list[float]]] = field(default_factory=list)

    def mean(self) -> dict[str, float]:
        """Test metrics averaged over the folds (one row of Table 4)."""
        return {m: float(np.mean([f[m] for f in self.folds])) for m in METRICS}


def cross_validate(x: torch.Tensor, y: torch.Tensor, test: tuple[torch.Tensor, torch.Tensor], *, arm: str, seed: int,
                   extra: tuple[torch.Tensor, torch.Tensor] | None = None, epochs: int = 250, folds: int = 5,
                   batch_size: int = 32, lr: float = 2e-4, width: int = 16, cache: bool = True,
                   progress: bool = False, threads: int | None = 1) -> ArmResult:
    """Stratified k-fold training on (x, y) (+ ``extra`` synthetic images in every training part), scored on ``test``.

    ``threads``: torch threads while training (one by default: batches of 32 small images gain little
    from a second thread, and lose a lot when the cores are shared). Results are cached by settings and data.
    """
    with torch_threads(threads):
        return _cross_validate(x, y, test, arm=arm, seed=seed, extra=extra, epochs=epochs, folds=folds,
                               batch_size=batch_size, lr=lr, width=width, cache=cache, progress=progress)


def _cross_validate(x: torch.Tensor, y: torch.Tensor, test: tuple[torch.Tensor, torch.Tensor], *, arm: str, seed: int,
                    extra: tuple[torch.Tensor, torch.Tensor] | None, epochs: int, folds: int, batch_size: int,
                    lr: float, width: int, cache: bool, progress: bool) -> ArmResult:
    from sklearn.model_selection import StratifiedKFold
    if len(x) != len(y) or x.dim() != 4:
        raise ValueError(f"expected images (N, C, H, W) and N labels, got {tuple(x.shape)} and {tuple(y.shape)}")
    n_classes = int(max(y.max(), test[1].max())) + 1
    key = {"arm": arm, "seed": seed, "epochs": epochs, "folds": folds, "batch": batch_size, "lr": lr, "width": width,
           "data": [x, y, *test, *(extra or ())], "n_extra": len(extra[0]) if extra else 0}  # data by content
    path = checkpoint_path(f"hushem-cv-{arm}-{seed}", **key)
    state = load_verified(path) if cache else None
    if state is not None:
        return ArmResult(arm, seed, list(state["folds"]), list(state["curves"]))
    result = ArmResult(arm, seed)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (tr, va) in enumerate(tqdm(list(splitter.split(np.zeros(len(y)), y.numpy())), desc=f"{arm} seed {seed} folds",
                                      disable=not progress, leave=False)):
        xt, yt = x[tr], y[tr]
        if extra is not None:
            xt, yt = torch.cat([xt, extra[0]]), torch.cat([yt, extra[1]])
        torch.manual_seed(1000 * seed + k)                    # same initial weights in every arm
        model = SmallCNN(x.shape[-1], x.shape[1], n_classes, width)
        opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.5, 0.999))
        curve: dict[str, list[float]] = {"train_loss": [], "val_accuracy": []}

        def track(epoch: int, record: dict, model=model, curve=curve, va=va) -> None:
            curve["train_loss"].append(record["train_loss"])
            curve["val_accuracy"].append(float((_proba(model, x[va]).argmax(1) == y[va]).float().mean()))
            model.train()

        fit(model, (xt, yt), epochs=epochs, loss=bce_one_hot, optimizer=opt, batch_size=batch_size,
            seed=1000 * seed + k, progress=False, on_epoch_end=track)
        result.folds.append(classification_metrics(test[1].numpy(), _proba(model, test[0]).numpy()))
        result.curves.append(curve)
    if cache:
        save_atomic({"folds": result.folds, "curves": result.curves}, path)
    return result


def results_table(results: list[ArmResult], names: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """Table 4's layout: per arm a mean row (``names[arm][0]``) then one row per seed (``names[arm][1]-<seed>``)."""
    rows = []
    for arm, (mean_name, seed_name) in names.items():
        mine = sorted((r for r in results if r.arm == arm), key=lambda r: r.seed)
        if not mine:
            continue
        per_seed = [{"row": f"{seed_name}-{r.seed}", "arm": arm, **r.mean()} for r in mine]
        mean = {"row": mean_name, "arm": arm, **{m: float(np.mean([p[m] for p in per_seed])) for m in METRICS}}
        rows += [mean, *per_seed]
    return pd.DataFrame(rows, columns=["row", "arm", *METRICS])


def spread_table(results: list[ArmResult]) -> pd.DataFrame:
    """Mean and standard deviation over seeds (sample std, ddof=1) of each metric, one row per arm."""
    rows = []
    for arm in dict.fromkeys(r.arm for r in results):
        per_seed = pd.DataFrame([r.mean() for r in results if r.arm == arm])
        rows.append({"arm": arm, "seeds": len(per_seed),
                     **{f"{m} mean": per_seed[m].mean() for m in METRICS},
                     **{f"{m} std": per_seed[m].std(ddof=1) if len(per_seed) > 1 else float("nan") for m in METRICS}})
    return pd.DataFrame(rows).set_index("arm")


__all__ = ["METRICS", "SmallCNN", "bce_one_hot", "classification_metrics", "ArmResult", "cross_validate",
           "results_table", "spread_table"]
