"""The convolutional autoencoder of document 002 (N. Váradi, "Training Deep Autoencoders with Genetic
Algorithms", DTU 2021), rebuilt from the C++ listing in its section 3.1.

The listing, line by line, and how we read it::

    setInputLayer(28, 28)       input (N, 1, 28, 28)
    addConvLayer(5, 5, 1)       conv 5x5, 1 channel                    -> (N, 1, 24, 24)
    addMaxPoolLayer()           max-pool 2x2                           -> (N, 1, 12, 12)
    addConvLayer(5, 5, 1)       conv 5x5, 1 channel                    -> (N, 1, 8, 8)
    addMaxPoolLayer()           max-pool 2x2                           -> (N, 1, 4, 4)
    addSigmLayer(5)             dense + sigmoid, 16 -> 5
    addSigmLayer(2)             dense + sigmoid, 5 -> 2: the latent point
    addSigmLayer(5)             dense + sigmoid, 2 -> 5
    addSigmLayer(160)           dense + sigmoid, 5 -> 160
    addReshapeLayer(4, 4, 10)   160 -> (N, 10, 4, 4): ten "brushes"
    addUnpoolLayer()            x2 upsampling                          -> (N, 10, 8, 8)
    addTrConvLayer(5, 5, 1)     transposed conv 5x5                    -> (N, 10, 12, 12)
    addUnpoolLayer()            x2 upsampling                          -> (N, 10, 24, 24)
    addTrConvLayer(5, 5, 10)    transposed conv 5x5                    -> (N, 1, 28, 28)

The channel arguments are ambiguous. The document says a conv layer's third argument is "the
number of channels the network diverges to" (so 1 keeps the single channel: its Fig. 1 shows one
4x4 map per sample), and that the decoder has ten channels, one per training sample. A transposed
conv whose argument also meant "diverge to" would end with 10 x 10 = 100 channels, not one image.
Our reading makes the decoder the mirror of the encoder: its argument counts the channels that
*merge* into one output channel. ``TrConv(5, 5, 1)`` gives each of the ten channels its own 5x5
kernel (a per-channel, "depthwise" transposed conv, 10 -> 10); ``TrConv(5, 5, 10)`` paints all ten
channels onto one 28x28 image (10 -> 1). The other plausible reading, a first transposed conv that
mixes all ten channels (10 -> 10 with 100 kernels), is ``GAAutoencoder(first_tconv="full")``.

Further choices where the document is silent (all visible below): "unpool" is nearest-neighbour
upsampling (there are no pooling indices to undo); the conv layers have no activation (the listing
names sigmoid layers only); the output goes through a sigmoid, which is why the document had to
scale its targets to [0.1, 0.9]: values a sigmoid reaches without saturating. Weights start from
PyTorch's default initialisation (the document says only "randomly initialized").
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

TARGET_LOW, TARGET_HIGH = 0.1, 0.9


def scale_targets(images: torch.Tensor) -> torch.Tensor:
    """Pixels in [0, 1] -> [0.1, 0.9], the range the document trained on."""
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise ValueError(f"expected pixel values in [0, 1], got [{float(images.min()):.3g}, {float(images.max()):.3g}]")
    # t = 0.1 + 0.8 x
    return TARGET_LOW + (TARGET_HIGH - TARGET_LOW) * images


def _upsample2(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour x2 upsampling (N, C, H, W) -> (N, C, 2H, 2W): every pixel copied into a 2x2 block."""
    n, c, h, w = x.shape
    return x[:, :, :, None, :, None].expand(n, c, h, 2, w, 2).reshape(n, c, 2 * h, 2 * w)


def _max_pool2(x: torch.Tensor) -> torch.Tensor:
    """2x2 max-pool (..., H, W) -> (..., H/2, W/2) as two elementwise maxima of strided views.

    The same numbers as ``F.max_pool2d(x, 2)``; on the CPU it is over 10x faster for the
    population's (N, P, 24, 24) maps, where PyTorch's pooling kernel took a sixth of the whole pass.
    """
    x = torch.maximum(x[..., 0::2, :], x[..., 1::2, :])   # rows in pairs
    return torch.maximum(x[..., 0::2], x[..., 1::2])      # then columns


def _upsample2_tconv5(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, groups: int) -> torch.Tensor:
    """``conv_transpose2d(_upsample2(h), weight, bias, groups=groups)`` for 5x5 kernels, about 3x fewer operations.

    Upsampling copies each pixel into a 2x2 block, so the 5x5 kernel meets every input pixel as a
    6x6 kernel (the 5x5 one summed over a 2x2 box) moving in steps of 2. Split by the parity
    (a, b) of the output pixel, that is four 3x3 transposed convolutions on the small map h, whose
    outputs interleave into the big one: y[2j + a, 2l + b] = phase_ab[j, l]. One grouped call
    computes all four phases (as four output channels per original channel).
    """
    c_in, c_out, _, _ = weight.shape  # (C_in, C_out / groups, 5, 5)
    # w6 = w convolved with a 2x2 box of ones: (C_in, C_out/g, 6, 6)
    w6 = (F.pad(weight, (0, 1, 0, 1)) + F.pad(weight, (1, 0, 0, 1))
          + F.pad(weight, (0, 1, 1, 0)) + F.pad(weight, (1, 0, 1, 0)))
    # phase kernels g_ab[s, t] = w6[2s + a, 2t + b]: (C_in, C_out/g * 4, 3, 3), channels ordered (out, a, b)
    phases = w6.reshape(c_in, c_out, 3, 2, 3, 2).permute(0, 1, 3, 5, 2, 4).reshape(c_in, c_out * 4, 3, 3)
    y = F.conv_transpose2d(h, phases, groups=groups)                        # (N, C_out*4, H+2, W+2)
    n, _, hh, ww = y.shape
    out = c_out * groups
    y = y.reshape(n, out, 2, 2, hh, ww).permute(0, 1, 4, 2, 5, 3).reshape(n, out, 2 * hh, 2 * ww)  # interleave
    return y + bias.reshape(1, out, 1, 1)


class GAAutoencoder(nn.Module):
    """Document 002's autoencoder: (N, 1, 28, 28) -> latent (N, 2) -> (N, 1, 28, 28), 1,635 parameters."""

    def __init__(self, brushes: int = 10, first_tconv: Literal["per_channel", "full"] = "per_channel") -> None:
        super().__init__()
        if brushes < 1:
            raise ValueError(f"brushes (decoder channels) must be at least 1, got {brushes}")
        if first_tconv not in ("per_channel", "full"):
            raise ValueError(f"first_tconv must be 'per_channel' or 'full', got {first_tconv!r}")
        self.brushes, self.first_tconv = brushes, first_tconv
        self.conv1 = nn.Conv2d(1, 1, 5)            # (N, 1, 28, 28) -> (N, 1, 24, 24), then pool -> 12x12
        self.conv2 = nn.Conv2d(1, 1, 5)            # (N, 1, 12, 12) -> (N, 1, 8, 8), then pool -> 4x4
        self.enc = nn.Linear(16, 5)                # (N, 16) -> (N, 5)
        self.latent = nn.Linear(5, 2)              # (N, 5) -> (N, 2): the latent point
        self.dec = nn.Linear(2, 5)                 # (N, 2) -> (N, 5)
        self.expand = nn.Linear(5, 16 * brushes)   # (N, 5) -> (N, 160), reshaped to (N, 10, 4, 4)
        groups = brushes if first_tconv == "per_channel" else 1
        self.tconv1 = nn.ConvTranspose2d(brushes, brushes, 5, groups=groups)  # (N, 10, 8, 8) -> (N, 10, 12, 12)
        self.tconv2 = nn.ConvTranspose2d(brushes, 1, 5)                       # (N, 10, 24, 24) -> (N, 1, 28, 28)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent points (N, 2) in (0, 1)^2 of images (N, 1, 28, 28)."""
        if x.dim() != 4 or x.shape[1:] != (1, 28, 28):
            raise ValueError(f"expected images of shape (N, 1, 28, 28), got {tuple(x.shape)}")
        h = F.max_pool2d(self.conv1(x), 2)                 # (N, 1, 12, 12)
        h = F.max_pool2d(self.conv2(h), 2)                 # (N, 1, 4, 4)
        h = torch.sigmoid(self.enc(h.flatten(1)))          # (N, 5)
        return torch.sigmoid(self.latent(h))               # (N, 2)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images (N, 1, 28, 28) in (0, 1) from latent points (N, 2)."""
        h = torch.sigmoid(self.dec(z))                     # (N, 5)
        h = torch.sigmoid(self.expand(h))                  # (N, 160)
        h = h.reshape(-1, self.brushes, 4, 4)              # (N, 10, 4, 4)
        h = self.tconv1(_upsample2(h))                     # (N, 10, 8, 8) -> (N, 10, 12, 12)
        h = self.tconv2(_upsample2(h))                     # (N, 10, 24, 24) -> (N, 1, 28, 28)
        return torch.sigmoid(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstructions (N, 1, 28, 28) in (0, 1)."""
        return self.decode(self.encode(x))

    def population_forward(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Outputs (P, N, 1, 28, 28) of P agents at once; ``params[name]`` is (P, *shape of that parameter).

        The same computation as ``forward`` for every agent, with the P agents folded into the
        channels of one grouped convolution per layer (and one batched matrix product per dense
        layer), so the whole population costs a dozen tensor operations, not P times a dozen. The
        last upsample + transposed conv, the costliest step, is computed on the small map
        (see ``_upsample2_tconv5``), and max-pooling by elementwise maxima (``_max_pool2``): the same
        numbers up to float rounding.
        """
        p = params
        n_agents, n, b = p["conv1.weight"].shape[0], x.shape[0], self.brushes
        # conv1: the input is shared, so agent i is simply output channel i
        h = F.conv2d(x, p["conv1.weight"].reshape(n_agents, 1, 5, 5), p["conv1.bias"].reshape(-1))  # (N, P, 24, 24)
        h = _max_pool2(h)                                                                            # (N, P, 12, 12)
        h = F.conv2d(h, p["conv2.weight"].reshape(n_agents, 1, 5, 5), p["conv2.bias"].reshape(-1),
                     groups=n_agents)                                                                # (N, P, 8, 8)
        h = _max_pool2(h).reshape(n, n_agents, 16).transpose(0, 1)                                   # (P, N, 16)

        def dense(h: torch.Tensor, name: str) -> torch.Tensor:
            # sigmoid(h W^T + b), one weight matrix per agent: (P, N, in) -> (P, N, out)
            return torch.sigmoid(torch.baddbmm(p[f"{name}.bias"].unsqueeze(1), h, p[f"{name}.weight"].transpose(1, 2)))

        z = dense(dense(h, "enc"), "latent")                                                         # (P, N, 2)
        h = dense(dense(z, "dec"), "expand")                                                         # (P, N, 160)
        h = _upsample2(h.transpose(0, 1).reshape(n, n_agents * b, 4, 4))                             # (N, P*10, 8, 8)
        w1 = p["tconv1.weight"]                                                                      # (P, 10, 1 or 10, 5, 5)
        h = F.conv_transpose2d(h, w1.reshape(n_agents * b, w1.shape[2], 5, 5), p["tconv1.bias"].reshape(-1),
                               groups=n_agents * b if self.first_tconv == "per_channel" else n_agents)  # (N, P*10, 12, 12)
        h = _upsample2_tconv5(h, p["tconv2.weight"].reshape(n_agents * b, 1, 5, 5), p["tconv2.bias"].reshape(-1),
                              groups=n_agents)                                                       # (N, P, 28, 28)
        return torch.sigmoid(h).transpose(0, 1).unsqueeze(2)                                         # (P, N, 1, 28, 28)


def layer_table(model: GAAutoencoder) -> list[dict[str, object]]:
    """One row per layer: name, parameter shapes and count (for the notebook's architecture table)."""
    rows = []
    for name, module in model.named_children():
        shapes = {k: tuple(v.shape) for k, v in module.named_parameters()}
        rows.append({"layer": name, "type": type(module).__name__, "weight": shapes.get("weight"),
                     "bias": shapes.get("bias"), "parameters": sum(v.numel() for v in module.parameters())})
    return rows
