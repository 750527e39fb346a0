"""The baseline classifier of notebook 05: a small CNN for 75x75 RGB traffic signs.

Document 001 retrains "the provided CNN" of its course but never describes it (no layers, no
optimiser, no epochs), so this network is our own choice: four conv-BN-ReLU-pool blocks that halve
the image each time, a global average pool and one dense layer. ``width`` sets the channels of the
first block (each block doubles them), so the profiles can make it narrower.
"""

from __future__ import annotations

import torch
from torch import nn

from course_lib.data.imageset import ImageSet
from course_lib.train import History, checkpoint_path, fit


def _block(c_in: int, c_out: int) -> nn.Sequential:
    """3x3 conv (same size), batch norm, ReLU, then 2x2 max-pool (halves H and W, rounding down)."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                         nn.MaxPool2d(2))


class SignCNN(nn.Module):
    """Logits for ``n_classes`` from (N, 3, 75, 75) images (any size of at least 16 px works)."""

    def __init__(self, n_classes: int = 10, width: int = 16, channels: int = 3, dropout: float = 0.3) -> None:
        super().__init__()
        if width < 1 or n_classes < 2:
            raise ValueError(f"need width >= 1 and n_classes >= 2, got width={width}, n_classes={n_classes}")
        self.features = nn.Sequential(
            _block(channels, width),           # (N, 3, 75, 75)  -> (N, w, 37, 37)
            _block(width, 2 * width),          #                 -> (N, 2w, 18, 18)
            _block(2 * width, 4 * width),      #                 -> (N, 4w, 9, 9)
            _block(4 * width, 8 * width),      #                 -> (N, 8w, 4, 4)
            nn.AdaptiveAvgPool2d(1),           #                 -> (N, 8w, 1, 1)
        )
        self.head = nn.Sequential(
            nn.Flatten(),                      # -> (N, 8w)
            nn.Dropout(dropout),
            nn.Linear(8 * width, n_classes),   # -> (N, n_classes) logits; softmax is in the loss
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (N, n_classes) for a batch (N, C, H, W)."""
        if x.ndim != 4 or min(x.shape[-2:]) < 16:
            raise ValueError(f"SignCNN expects a batch (N, C, H, W) with H, W >= 16, got {tuple(x.shape)}")
        return self.head(self.features(x))


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Predicted class of each image (N,), in eval mode."""
    was_training = model.training
    model.eval()
    out = torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


def train_sign_cnn(train_set: ImageSet, *, epochs: int, width: int = 16, lr: float = 1e-3, batch_size: int = 32,
                   seed: int = 0, name: str = "sign-cnn", progress: bool = True) -> tuple[SignCNN, History]:
    """A fresh :class:`SignCNN` trained on ``train_set`` (Adam, cross-entropy); cached, so a re-run loads it."""
    torch.manual_seed(seed)  # the same initial weights for every training set at a given seed
    model = SignCNN(n_classes=len(train_set.classes), width=width, channels=train_set.shape[0])
    path = checkpoint_path(name, data=train_set.name, content=train_set, n=len(train_set), epochs=epochs,
                           width=width, lr=lr, batch=batch_size, seed=seed)
    history = fit(model, (train_set.x, train_set.y), epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                  checkpoint=path, progress=progress)
    return model, history


__all__ = ["SignCNN", "predict", "train_sign_cnn"]
