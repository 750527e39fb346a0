"""The baseline sign classifier of notebook 05: shapes, bad input, one step lowers the loss, cached training."""

from __future__ import annotations

import pytest
import torch

from course_lib.data.imageset import ImageSet
from course_lib.models.sign_cnn import SignCNN, predict, train_sign_cnn


def test_shapes_and_width():
    x = torch.rand(5, 3, 75, 75)
    model = SignCNN(n_classes=10, width=4)
    assert model(x).shape == (5, 10)
    assert model.features(x).shape == (5, 32, 1, 1)  # 8 * width channels after the global pool
    narrow, wide = (sum(p.numel() for p in SignCNN(width=w).parameters()) for w in (4, 16))
    assert narrow < wide
    assert predict(model, x).shape == (5,) and predict(model, x).dtype == torch.long


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="H, W >= 16"):
        SignCNN()(torch.rand(3, 75, 75))
    with pytest.raises(ValueError, match="width"):
        SignCNN(width=0)


def test_one_step_lowers_the_loss():
    torch.manual_seed(0)
    model = SignCNN(n_classes=3, width=4, dropout=0.0)
    x, y = torch.rand(12, 3, 75, 75), torch.arange(12) % 3
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()  # both losses in training mode: batch-norm uses the batch's own statistics each time
    before = torch.nn.functional.cross_entropy(model(x), y)
    before.backward()
    opt.step()
    with torch.no_grad():
        after = torch.nn.functional.cross_entropy(model(x), y)
    assert float(after) < float(before.detach())


def test_training_is_cached_and_reloaded(capsys):
    g = torch.Generator().manual_seed(0)
    data = ImageSet(torch.rand(8, 3, 20, 20, generator=g), torch.tensor([0, 1] * 4), ["a", "b"], "tiny", "test")
    model, history = train_sign_cnn(data, epochs=2, width=2, progress=False, name="test-sign-cnn")
    assert len(history) == 2 and history.resumed_from == 0
    again, history2 = train_sign_cnn(data, epochs=2, width=2, progress=True, name="test-sign-cnn")
    assert history2.resumed_from == 2 and "Loaded a finished run" in capsys.readouterr().out
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
