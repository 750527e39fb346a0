"""Notebook 08's classifier experiment: metric helpers against scikit-learn, cross-validation, tables."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from course_lib.crossval import (METRICS, ArmResult, SmallCNN, bce_one_hot, classification_metrics, cross_validate,
                                 results_table, spread_table)


def test_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 60)
    proba = rng.dirichlet(np.ones(4), 60)
    proba[np.arange(60), y] += 0.4                     # better than chance, not perfect
    proba /= proba.sum(1, keepdims=True)
    got = classification_metrics(y, proba)
    pred = proba.argmax(1)
    assert got["accuracy"] == pytest.approx(np.mean(pred == y))
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    aucs = [skm.roc_auc_score(y == c, proba[:, c]) for c in range(4)]   # one class against the rest, by hand
    assert got["auroc"] == pytest.approx(np.mean(aucs))
    aps = [skm.average_precision_score(y == c, proba[:, c]) for c in range(4)]
    assert got["average_precision"] == pytest.approx(np.mean(aps))


def test_perfect_and_bad_inputs():
    y = np.array([0, 1, 2, 3, 0, 1])
    perfect = np.eye(4)[y] * 0.9 + 0.025
    assert all(v == pytest.approx(1.0) for v in classification_metrics(y, perfect).values())
    with pytest.raises(ValueError, match="expected probabilities"):
        classification_metrics(y, perfect[:3])


def test_bce_one_hot_is_the_mean_of_per_class_bces():
    logits, y = torch.tensor([[2.0, -1.0, 0.0]]), torch.tensor([0])
    p = torch.sigmoid(logits)[0]
    by_hand = -(torch.log(p[0]) + torch.log(1 - p[1]) + torch.log(1 - p[2])) / 3
    assert float(bce_one_hot(logits, y)) == pytest.approx(float(by_hand), rel=1e-5)


def test_cross_validation_runs_folds_and_caches(cache):
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(4).repeat(6)
    x = torch.rand(24, 1, 16, 16, generator=gen) * 0.3 + y[:, None, None, None] * 0.2   # classes differ in brightness
    test = (x[:8] + 0.01, y[:8])
    extra = (x[:4].flip(-1), y[:4])
    assert SmallCNN(16)(x).shape == (24, 4)
    res = cross_validate(x, y, test, arm="evolved", seed=1, extra=extra, epochs=3, folds=2)
    assert len(res.folds) == 2 and set(res.folds[0]) == set(METRICS)
    assert len(res.curves[0]["val_accuracy"]) == 3 and len(res.curves[0]["train_loss"]) == 3
    again = cross_validate(x, y, test, arm="evolved", seed=1, extra=extra, epochs=3, folds=2)
    assert again.folds == res.folds
    with pytest.raises(ValueError, match="expected images"):
        cross_validate(x[0], y, test, arm="x", seed=0)


def test_tables_have_table4_layout():
    results = [ArmResult(arm, s, folds=[{m: 0.5 + 0.01 * s + (0.1 if arm == "evolved" else 0) for m in METRICS}] * 2)
               for arm in ("original", "evolved") for s in range(3)]
    table = results_table(results, {"original": ("Original", "Model"), "evolved": ("Augmented", "Seed")})
    assert list(table.row) == ["Original", "Model-0", "Model-1", "Model-2", "Augmented", "Seed-0", "Seed-1", "Seed-2"]
    assert table.set_index("row").loc["Augmented", "accuracy"] == pytest.approx(0.61)
    spread = spread_table(results)
    assert spread.loc["original", "accuracy mean"] == pytest.approx(0.51)
    assert spread.loc["evolved", "accuracy std"] == pytest.approx(0.01)
