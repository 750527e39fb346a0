"""Scores of classifiers: predictions, accuracy, per-class recall, cross-data-set accuracy matrices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from course_lib.data.imageset import ImageSet


@torch.no_grad()
def predict_proba(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Softmax class probabilities (N, n_classes) of ``model`` on images x, in eval mode."""
    was_training = model.training
    model.eval()
    out = torch.cat([torch.softmax(model(x[i:i + batch_size]), dim=1) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


def accuracy(model: nn.Module, data: ImageSet) -> float:
    """Share of ``data`` that ``model`` classifies correctly."""
    return float((predict_proba(model, data.x).argmax(1) == data.y).float().mean())


def per_class_recall(y_true: np.ndarray | torch.Tensor, y_pred: np.ndarray | torch.Tensor, n_classes: int) -> np.ndarray:
    """Recall of each class: the share of its images predicted as that class (NaN for an absent class)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    recall = np.full(n_classes, np.nan)
    for c in range(n_classes):
        mask = y_true == c
        if mask.any():
            recall[c] = float(np.mean(y_pred[mask] == c))
    return recall


def cross_accuracy(models: dict[str, nn.Module], test_sets: dict[str, ImageSet]) -> pd.DataFrame:
    """Accuracy matrix: one row per model (named for its training set), one column per test set."""
    table = pd.DataFrame(index=list(models), columns=list(test_sets), dtype=float)
    for train_name, model in models.items():
        for test_name, data in test_sets.items():
            table.loc[train_name, test_name] = accuracy(model, data)
    table.index.name = "trained on \\ tested on"
    return table


def recall_table(models: dict[str, nn.Module], test_sets: dict[str, ImageSet]) -> pd.DataFrame:
    """Per-class recall of every (model, test set) pair: rows are classes, columns 'model -> test set'."""
    columns = {}
    classes = next(iter(test_sets.values())).classes
    for train_name, model in models.items():
        for test_name, data in test_sets.items():
            pred = predict_proba(model, data.x).argmax(1)
            columns[f"{train_name} -> {test_name}"] = per_class_recall(data.y, pred, len(classes))
    return pd.DataFrame(columns, index=pd.Index(classes, name="class"))


def top_confusions(y_true: np.ndarray | torch.Tensor, y_pred: np.ndarray | torch.Tensor, classes: list[str],
                   k: int = 5) -> pd.DataFrame:
    """The ``k`` most frequent (true, predicted) mistakes, with their share of the true class."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    counts = pd.crosstab(y_true, y_pred)
    rows = []
    for t in counts.index:
        for p in counts.columns:
            if t != p and counts.loc[t, p] > 0:
                rows.append({"true": classes[t], "predicted": classes[p], "count": int(counts.loc[t, p]),
                             "share of true class": counts.loc[t, p] / counts.loc[t].sum()})
    table = pd.DataFrame(rows, columns=["true", "predicted", "count", "share of true class"])
    return table.sort_values("count", ascending=False).head(k).reset_index(drop=True)


class LeNetFeatures(nn.Module):
    """The 84-unit penultimate layer of a trained LeNet-5, as a feature extractor for FID."""

    num_features = 84  # torchmetrics reads this instead of probing with an Inception-sized input

    def __init__(self, lenet: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(lenet.features, *list(lenet.classifier)[:-1]).eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) in [0, 1] -> (N, 84) features."""
        with torch.no_grad():
            return self.body(x.float())


def feature_fid(real: torch.Tensor, fake: torch.Tensor, features: nn.Module) -> float:
    """Frechet distance between Gaussians fitted to ``features`` of two image sets (torchmetrics FID)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    if len(real) < 2 or len(fake) < 2:
        raise ValueError(f"FID needs at least 2 images per set, got {len(real)} and {len(fake)}")
    fid = FrechetInceptionDistance(feature=features, normalize=True)
    fid.update(real, real=True)
    fid.update(fake, real=False)
    return float(fid.compute())


def threshold_split(scores: np.ndarray | torch.Tensor, threshold: float = 0.5) -> dict[str, float]:
    """Share of scores above and below ``threshold`` (Table III of document 000 at 0.5)."""
    scores = np.asarray(scores, dtype=float)
    if scores.size == 0:
        raise ValueError("no scores to split")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
    above = float(np.mean(scores > threshold))
    return {"above": above, "below": 1.0 - above}
