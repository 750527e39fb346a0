"""LeNet-5 as document 000 lists it (after LeCun et al. 1998, "Gradient-based learning applied to
document recognition"): 28x28 input zero-padded to 32x32, two conv/pool stages, three dense layers.
"""

from __future__ import annotations

import torch
from torch import nn


class LeNet5(nn.Module):
    """LeNet-5 with ReLU and max-pooling, returning logits for ``n_classes`` classes."""

    def __init__(self, n_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ZeroPad2d(2),                             # (N, 1, 28, 28) -> (N, 1, 32, 32)
            nn.Conv2d(in_channels, 6, kernel_size=5),    # -> (N, 6, 28, 28)
            nn.ReLU(),
            nn.MaxPool2d(2),                             # -> (N, 6, 14, 14)
            nn.Conv2d(6, 16, kernel_size=5),             # -> (N, 16, 10, 10)
            nn.ReLU(),
            nn.MaxPool2d(2),                             # -> (N, 16, 5, 5)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),                                # -> (N, 400)
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(),       # -> (N, 120)
            nn.Linear(120, 84), nn.ReLU(),               # -> (N, 84)
            nn.Linear(84, n_classes),                    # -> (N, n_classes) logits; softmax is in the loss
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of (N, C, 28, 28) images."""
        assert x.shape[-2:] == (28, 28), f"LeNet5 expects 28x28 images, got {tuple(x.shape[-2:])}"
        return self.classifier(self.features(x))


def layer_table(model: nn.Module, input_shape: tuple[int, ...] = (1, 1, 28, 28)) -> "pd.DataFrame":
    """Each leaf layer of ``model`` with its output shape and parameter count, from one dummy forward pass."""
    import pandas as pd

    rows, hooks = [], []
    for name, module in model.named_modules():
        if len(list(module.children())) == 0:
            def hook(mod, _inp, out, name=name):
                rows.append({"layer": f"{name}: {mod.__class__.__name__}", "output shape": tuple(out.shape[1:]),
                             "parameters": sum(p.numel() for p in mod.parameters())})
            hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(torch.zeros(input_shape))
    finally:
        for h in hooks:
            h.remove()
    return pd.DataFrame(rows)


def train_lenet(train_set: "ImageSet", val_set: "ImageSet", *, epochs: int, augment: bool = True,
                lr: float = 1e-3, batch_size: int = 64, name: str = "lenet", seed: int = 0,
                progress: bool = True) -> tuple["LeNet5", "History"]:
    """LeNet-5 trained on ``train_set`` (cached: the same settings load the saved model instead of retraining)."""
    from course_lib.augment import random_affine
    from course_lib.seeding import seed_everything
    from course_lib.train import checkpoint_path, fit

    seed_everything(seed)
    model = LeNet5(n_classes=len(train_set.classes))
    path = checkpoint_path(name, n=len(train_set), data=train_set.name, content=train_set, epochs=epochs, augment=augment,
                           lr=lr, batch=batch_size, seed=seed)
    history = fit(model, (train_set.x, train_set.y), val=(val_set.x, val_set.y), epochs=epochs, lr=lr,
                  batch_size=batch_size, seed=seed, augment=random_affine if augment else None,
                  checkpoint=path, progress=progress)
    return model, history
