"""Benchmark: scoring a GA population of document 002's autoencoder in one batched pass vs. a Python
loop that loads each agent into the model in turn (notebook 06).

Three ways, same agents, same images, measured in the same run:
- batched: ``GAAutoencoder.population_forward`` (conv1 as one matrix product, conv2 as a grouped
  convolution, batched matrix products, transposed convolutions as stamped kernels), what
  ``course_lib.evolution.evolve`` uses;
- vmap: ``torch.func.vmap`` over ``torch.func.functional_call``, the generic batched path;
- loop: ``vector_to_parameters`` + ``model(x)`` per agent, the baseline.
The outputs are checked to agree before timing. Each timing is a block of ``--block`` evaluations
in a row, as generations follow each other in a run; the blocks of the three ways are interleaved
(batched, vmap, loop, batched, ...) so that a busy machine slows all of them alike. Prints the time
per population evaluation (best block and median block) and the ratio loop / batched.
Target: >= 20x at population 20.

Sub-millisecond timings on Linux also depend on the C library's allocator: when glibc hands freed
memory back to the system between calls, the next call pays page faults, and a run can show a
2-3x slower batched pass for some sizes. The ratios printed are what this process measured.

    python benchmarks/bench_ga_population.py [--population 5 10 20] [--samples 1 10] [--threads 1 2] [--block 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from course_lib.evolution import population_outputs, random_population, torch_threads
from course_lib.models.conv_autoencoder_ga import GAAutoencoder, scale_targets

METHODS = ("batched", "vmap", "loop")


def measure(model: GAAutoencoder, agents: torch.Tensor, x: torch.Tensor, repeats: int,
            block: int) -> dict[str, list[float]]:
    """Seconds per evaluation of the whole population, per method: ``repeats`` interleaved blocks of ``block`` calls."""
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    for m in METHODS:  # warm-up
        population_outputs(model, agents, x, m)
    for _ in range(repeats):
        for m in METHODS:
            start = time.perf_counter()
            for _ in range(block):
                population_outputs(model, agents, x, m)
            times[m].append((time.perf_counter() - start) / block)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--samples", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=15, help="interleaved blocks per method")
    parser.add_argument("--block", type=int, default=10, help="evaluations in a row per block")
    args = parser.parse_args()
    model = GAAutoencoder()
    torch.manual_seed(0)
    images = scale_targets(torch.rand(max(args.samples), 1, 28, 28))
    print(f"document 002's autoencoder, {sum(p.numel() for p in model.parameters())} parameters per agent; "
          f"{args.repeats} interleaved blocks of {args.block} evaluations; "
          f"time per evaluation of the whole population (best block / median block)")
    headline = {}
    for threads in args.threads:
        with torch_threads(threads):
            for n in args.samples:
                x = images[:n]
                for size in args.population:
                    agents = random_population(model, size, seed=0)
                    reference = population_outputs(model, agents, x, "loop")
                    for m in ("batched", "vmap"):
                        torch.testing.assert_close(population_outputs(model, agents, x, m), reference,
                                                   rtol=0, atol=1e-5)
                    t = measure(model, agents, x, args.repeats, args.block)
                    best = {m: min(v) for m, v in t.items()}
                    med = {m: statistics.median(v) for m, v in t.items()}
                    ratio = best["loop"] / best["batched"]
                    if size == 20:
                        headline[threads, n] = ratio
                    print(f"threads {threads}, {n:2d} image(s), population {size:3d}: "
                          + ", ".join(f"{m} {1e3 * best[m]:6.2f} / {1e3 * med[m]:6.2f} ms" for m in METHODS)
                          + f"  | loop/batched {ratio:5.1f}x, loop/vmap {best['loop'] / best['vmap']:5.1f}x",
                          flush=True)
    for (threads, n), ratio in headline.items():
        verdict = "meets" if ratio >= 20 else "misses"
        print(f"population 20, {n} image(s), {threads} thread(s): batched is {ratio:.1f}x faster than the loop "
              f"({verdict} the 20x target)")


if __name__ == "__main__":
    main()
