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

import functools
import threading
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


# w6 = w5 convolved with a 2x2 box of ones, as a fixed (25, 36) matrix: w6.flatten() = w5.flatten() @ BOX
_BOX = sum(F.pad(torch.eye(25).reshape(25, 5, 5), pad) for pad in
           [(0, 1, 0, 1), (1, 0, 0, 1), (0, 1, 1, 0), (1, 0, 1, 0)]).reshape(25, 36)


@functools.lru_cache(maxsize=16)
def _stamp_index(size: int, n: int) -> torch.Tensor:
    """Where each term of ``_stamp`` lands: for (u, v, image i, j, l), pixel (2j + u, 2l + v) of output map i."""
    out = 2 * size + 4
    u, v, i, j, l = torch.meshgrid(*(torch.arange(k) for k in (6, 6, n, size, size)), indexing="ij")
    return (i * out * out + (2 * j + u) * out + (2 * l + v)).reshape(-1)


def _stamp(terms: torch.Tensor, bias: torch.Tensor, size: int, n: int, dim: int = 1) -> torch.Tensor:
    """Add stamped 6x6 kernels into output maps: C channels of 36 * n * size^2 terms -> n * (2 size + 4)^2 pixels.

    ``terms`` is (C, terms) for ``dim=1`` or (terms, C) for ``dim=0`` (the output has the same
    layout); term (u, v, i, j, l) of a channel is kernel entry w6[u, v] times input pixel h[i, j, l],
    and a transposed convolution with stride 2 adds it to output pixel (2j + u, 2l + v) of image i.
    One ``index_add_`` does all the adding; each output map starts from its bias.
    """
    pixels = n * (2 * size + 4) ** 2
    out = bias.view(-1, 1).expand(len(bias), pixels) if dim == 1 else bias.view(1, -1).expand(pixels, len(bias))
    return out.contiguous().index_add_(dim, _stamp_index(size, n), terms)


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
        # (name, size) of each parameter, in the order of a flat agent (``population_forward`` splits by it)
        self.flat_layout = tuple((name, p.numel()) for name, p in self.named_parameters())
        self._workspace_buffers: tuple[int | None, dict[str, torch.Tensor]] = (None, {})

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

    def _workspace(self, name: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """A scratch tensor kept between calls, one set per thread.

        ``population_forward``'s two largest intermediates are megabytes at 10 images; allocating them
        afresh every generation can make the C allocator map new memory each time, and the page
        faults then cost more than the arithmetic (measured: 2.1 ms instead of 1.3 ms per pass).
        """
        owner, buffers = self._workspace_buffers
        if owner != threading.get_ident():
            buffers = {}
            self._workspace_buffers = (threading.get_ident(), buffers)
        buf = buffers.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = buffers[name] = torch.empty(shape, dtype=dtype)
        return buf

    def population_forward(self, agents: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Outputs (P, N, 1, 28, 28) of P agents at once; ``agents`` is (P, n_parameters), flat in parameter order.

        The same computation as ``forward`` for every agent, written so that the whole population
        costs about twenty tensor operations, not P times twenty:

        - conv1: all agents see the same images, so it is one matrix product of the P kernels with
          the images' 5x5 patches;
        - conv2: agents are the channels of one grouped convolution;
        - dense layers: one batched matrix product (``baddbmm``) per layer, one matrix per agent;
        - "unpool" + transposed conv: upsampling copies each pixel into a 2x2 block, so together
          they are a transposed convolution with stride 2 and a 6x6 kernel (the 5x5 one summed over
          a 2x2 box). A transposed convolution stamps its kernel, scaled by each input pixel, onto
          the output; we form every (kernel entry x pixel) term with one product and add them into
          place with one ``index_add_`` (``_stamp``).
        Max-pooling is two elementwise maxima (``_max_pool2``). Same numbers as the loop up to float
        rounding (the tests check 1e-6).
        """
        names, sizes = zip(*self.flat_layout)
        if agents.dim() != 2 or agents.shape[1] != sum(sizes):
            raise ValueError(f"expected agents of shape (P, {sum(sizes)}), got {tuple(agents.shape)}")
        if x.dim() != 4 or x.shape[1:] != (1, 28, 28):
            raise ValueError(f"expected images of shape (N, 1, 28, 28), got {tuple(x.shape)}")
        w = dict(zip(names, agents.split(sizes, dim=1)))                             # name -> (P, numel)
        n_agents, n, b = len(agents), len(x), self.brushes
        # conv1 as a matrix product: (P, 25) kernels x (25, N*576) patches
        patches = x[:, 0].unfold(1, 5, 1).unfold(2, 5, 1).permute(3, 4, 0, 1, 2).reshape(25, n * 576)
        h = torch.addmm(w["conv1.bias"], w["conv1.weight"], patches)                # (P, N*576)
        h = _max_pool2(h.view(n_agents, n, 24, 24)).transpose(0, 1)                  # (N, P, 12, 12)
        h = F.conv2d(h, w["conv2.weight"].view(n_agents, 1, 5, 5), w["conv2.bias"].view(n_agents),
                     groups=n_agents)                                                # (N, P, 8, 8)
        h = _max_pool2(h).reshape(n, n_agents, 16).transpose(0, 1)                   # (P, N, 16)
        for name, (d_in, d_out) in (("enc", (16, 5)), ("latent", (5, 2)), ("dec", (2, 5)), ("expand", (5, 16 * b))):
            # sigmoid(h W^T + b), one (d_out, d_in) matrix per agent: (P, N, d_in) -> (P, N, d_out)
            weight_t = w[f"{name}.weight"].view(n_agents, d_out, d_in).transpose(1, 2)
            h = torch.baddbmm(w[f"{name}.bias"].view(n_agents, 1, d_out), h, weight_t).sigmoid_()
        # upsample + tconv1 = stride-2 tconv with 6x6 kernels w6 = w5 @ BOX; C = P*10 brushes
        c = n_agents * b
        w6 = _BOX.t() @ w["tconv1.weight"].reshape(-1, 25).t()               # (36, C or C*10), kernel entry first
        if self.first_tconv == "per_channel":                                # brush c is stamped by its own kernel
            h = h.view(n_agents, n, b, 16).permute(1, 3, 0, 2).contiguous()  # (N, 4*4, P, 10): brushes last
            # term (u, v, i, j, l) of brush c = w6[u, v, c] * h[i, j, l, c]
            terms = torch.mul(w6.view(36, 1, c), h.view(1, n * 16, c),
                              out=self._workspace("tconv1", (36, n * 16, c), h.dtype))  # (36, N*16, C)
        else:                                                                # every output brush mixes all ten
            w6 = w6.view(36, n_agents, b, b).permute(1, 3, 0, 2).reshape(n_agents, b * 36, b)  # (P, out*36, in)
            h = h.view(n_agents, n, b, 16).permute(0, 2, 1, 3).reshape(n_agents, b, n * 16)    # (P, in, N*16)
            terms = torch.bmm(w6, h).view(c, 36 * n * 16).t()                                 # (36*N*16, C)
        h = _stamp(terms.reshape(36 * n * 16, c), w["tconv1.bias"].reshape(c), 4, n, dim=0)  # (N*12*12, C)
        # upsample + tconv2: each agent's ten brushes summed per kernel entry (a matrix product), then stamped
        w6 = (w["tconv2.weight"].reshape(c, 25) @ _BOX).view(n_agents, b, 36).transpose(1, 2)  # (P, 36, 10)
        terms = torch.bmm(w6, h.t().view(n_agents, b, n * 144),
                          out=self._workspace("tconv2", (n_agents, 36, n * 144), h.dtype))      # (P, 36, N*144)
        y = _stamp(terms.view(n_agents, -1), w["tconv2.bias"].reshape(n_agents), 12, n)       # (P, N*28*28)
        return y.sigmoid_().view(n_agents, n, 1, 28, 28)


def layer_table(model: GAAutoencoder) -> list[dict[str, object]]:
    """One row per layer: name, parameter shapes and count (for the notebook's architecture table)."""
    rows = []
    for name, module in model.named_children():
        shapes = {k: tuple(v.shape) for k, v in module.named_parameters()}
        rows.append({"layer": name, "type": type(module).__name__, "weight": shapes.get("weight"),
                     "bias": shapes.get("bias"), "parameters": sum(v.numel() for v in module.parameters())})
    return rows
