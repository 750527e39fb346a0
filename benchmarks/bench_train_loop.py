"""Benchmark: `course_lib.train.fit` vs. a plain hand-written PyTorch loop, LeNet-5 on MNIST.

Both run in this process on the same preloaded tensors, same model, optimizer, batch size, epochs
and per-epoch test evaluation; `fit` additionally keeps a history, a progress bar and writes a
checkpoint every epoch. Runs alternate (plain, fit, plain, fit, ...) and the median of each is
compared. Target: fit / plain <= 1.10.

    python benchmarks/bench_train_loop.py [--epochs 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from course_lib import seed_everything
from course_lib.data import load_mnist
from course_lib.models import LeNet5
from course_lib.train import evaluate, fit


def plain_loop(x, y, xt, yt, epochs: int, batch_size: int, seed: int) -> float:
    """The loop a student would write by hand; returns the final test accuracy."""
    seed_everything(seed)
    model = LeNet5()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
        acc = evaluate(model, xt, yt)["accuracy"]
    return acc


def with_fit(x, y, xt, yt, epochs: int, batch_size: int, seed: int, ckpt: Path) -> float:
    """The same training through course_lib.train.fit (checkpoint every epoch, progress bar off)."""
    seed_everything(seed)
    model = LeNet5()
    hist = fit(model, (x, y), val=(xt, yt), epochs=epochs, batch_size=batch_size, seed=seed,
               checkpoint=ckpt, retrain=True, progress=False)
    return hist.last("val_accuracy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    train, test = load_mnist()
    x, y, xt, yt = train.x, train.y, test.x, test.y
    print(f"data: {len(x)} train / {len(xt)} test images; torch threads: {torch.get_num_threads()}")
    times = {"plain": [], "fit": []}
    accs = {"plain": [], "fit": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for name in ("plain", "fit"):
                start = time.perf_counter()
                if name == "plain":
                    acc = plain_loop(x, y, xt, yt, args.epochs, args.batch_size, seed=r)
                else:
                    acc = with_fit(x, y, xt, yt, args.epochs, args.batch_size, seed=r, ckpt=Path(tmp) / "b.pt")
                times[name].append(time.perf_counter() - start)
                accs[name].append(acc)
    plain, ours = statistics.median(times["plain"]), statistics.median(times["fit"])
    print(f"plain loop: median {plain:.2f} s over {args.repeats} runs of {args.epochs} epochs "
          f"(test accuracy {statistics.mean(accs['plain']):.4f})")
    print(f"fit():      median {ours:.2f} s (test accuracy {statistics.mean(accs['fit']):.4f})")
    ratio = ours / plain
    print(f"ratio fit/plain = {ratio:.3f}  (target <= 1.10: {'met' if ratio <= 1.10 else 'NOT met'})")


if __name__ == "__main__":
    main()
