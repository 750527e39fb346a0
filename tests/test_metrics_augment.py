import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from course_lib.augment import random_affine
from course_lib.data.imageset import ImageSet
from course_lib.metrics import accuracy, cross_accuracy, per_class_recall, predict_proba, recall_table, top_confusions
from course_lib.models.lenet import LeNet5, layer_table


class Oracle(nn.Module):
    """A toy 'model' that reads the label off pixel (0, 0): perfect on sets that encode it, wrong elsewhere."""

    def forward(self, x):
        label = (x[:, 0, 0, 0] * 10).round().long().clamp(0, 9)
        return nn.functional.one_hot(label, 10).float() * 10


def toy_set(labels, encode=True, name="toy"):
    y = torch.tensor(labels)
    x = torch.zeros(len(labels), 1, 28, 28)
    if encode:
        x[:, 0, 0, 0] = y.float() / 10
    return ImageSet(x, y, [str(i) for i in range(10)], name, "test fixture")


def test_per_class_recall_by_hand():
    recall = per_class_recall([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], n_classes=4)
    np.testing.assert_allclose(recall[:3], [0.5, 1.0, 0.0])
    assert np.isnan(recall[3])


def test_cross_accuracy_matrix_on_a_toy_model():
    encoded, blank = toy_set([1, 2, 3, 4]), toy_set([1, 2, 3, 0], encode=False)
    table = cross_accuracy({"oracle": Oracle()}, {"encoded": encoded, "blank": blank})
    assert table.loc["oracle", "encoded"] == 1.0
    assert table.loc["oracle", "blank"] == 0.25  # predicts 0 everywhere: only the true 0 is right
    recalls = recall_table({"oracle": Oracle()}, {"blank": blank})
    assert recalls.loc["0", "oracle -> blank"] == 1.0 and recalls.loc["1", "oracle -> blank"] == 0.0
    assert accuracy(Oracle(), encoded) == 1.0
    assert torch.allclose(predict_proba(Oracle(), encoded.x).sum(1), torch.ones(4))


def test_top_confusions():
    table = top_confusions(np.array([9, 9, 9, 1, 1]), np.array([4, 4, 7, 7, 1]), [str(i) for i in range(10)], k=2)
    assert table.iloc[0].to_dict() == {"true": "9", "predicted": "4", "count": 2, "share of true class": 2 / 3}
    assert len(table) == 2


def test_random_affine_is_per_image_and_keeps_shapes():
    x = torch.zeros(8, 1, 28, 28)
    x[:, :, 10:18, 12:16] = 1.0
    g = torch.Generator().manual_seed(0)
    out = random_affine(x, generator=g)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.allclose(out[0], out[1])  # each image moved differently
    still = random_affine(x, degrees=0, translate=0, scale=(1, 1))
    torch.testing.assert_close(still, x, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="batch"):
        random_affine(torch.zeros(28, 28))


def test_lenet_layer_table_lists_the_documents_shapes():
    table = layer_table(LeNet5())
    shapes = table["output shape"].tolist()
    for expected in [(1, 32, 32), (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120,), (84,), (10,)]:
        assert expected in shapes
    assert table.parameters.sum() == 61706
