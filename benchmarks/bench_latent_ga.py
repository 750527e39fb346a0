"""Benchmark: one generation of notebook 08's latent-set GA, whole population batched vs. loops.

A generation is: make the children (tournament, uniform crossover, random reset) and score them
(decode every child's images with the class's generator, then eqs. 1-4 with the correlation NCC).
Three ways to score, same population, same generator, measured in the same run and interleaved
(batched, per-individual, per-image, batched, ...) so that a busy machine slows all of them alike:
- batched: ``score_population``, what ``evolve_latents`` uses: all P x n latent vectors decoded in
  chunks of 64 images and one tensor expression for every fitness;
- per-individual: a Python loop over individuals, each individual's n images decoded together;
- per-image: a Python loop over individuals and over their images, one decoder call per image.
The three are checked to agree before timing. Prints the share of a generation spent decoding
(work that no way of batching removes), the seconds per generation (best of the repeats, and the
median) and the ratios. Target: batched >= 10x faster than the per-individual loop.

    python benchmarks/bench_latent_ga.py [--size 32] [--width 32] [--population 20] [--images 40] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from course_lib.evolution import torch_threads
from course_lib.latent_ga import (GASettings, decode, next_generation, random_population, score_loop, score_per_individual,
                                  score_population)
from course_lib.models.dcgan import DCGenerator

METHODS = {"batched": score_population, "per-individual": score_per_individual, "per-image": score_loop}


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def one_generation(G, pop, fitness, originals, s, gen, method) -> torch.Tensor:
    """Children of ``pop`` and their fitness, scored by ``method``."""
    children = next_generation(pop, fitness, s, gen)
    return METHODS[method](G, children[s.elite:], originals)


def main() -> None:
    """Time one generation per method and print the ratios."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32, help="image size (class profile: 32; document: 132)")
    ap.add_argument("--width", type=int, default=32, help="generator width")
    ap.add_argument("--population", type=int, default=20)
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.manual_seed(0)
    G = DCGenerator(100, args.size, 1, args.width).eval()
    s = GASettings(population=args.population, n_images=args.images)
    gen = torch.Generator().manual_seed(0)
    pop = random_population(s.population, s.n_images, 100, gen)
    originals = torch.rand(40, 1, args.size, args.size, generator=gen)
    fitness = score_population(G, pop, originals)
    for name, fn in METHODS.items():
        assert torch.allclose(fn(G, pop[:3], originals), fitness[:3], atol=1e-5), f"{name} disagrees"
    print(f"one generation: {s.population - s.elite} children x {s.n_images} images of {args.size}x{args.size}, "
          f"generator width {args.width}; {args.repeats} interleaved repeats, seconds per generation")
    for threads in args.threads:
        with torch_threads(threads):
            times: dict[str, list[float]] = {m: [] for m in METHODS}
            for m in METHODS:  # warm-up
                one_generation(G, pop, fitness, originals, s, gen, m)
            for _ in range(args.repeats):
                for m in METHODS:
                    start = time.perf_counter()
                    one_generation(G, pop, fitness, originals, s, gen, m)
                    times[m].append(time.perf_counter() - start)
            decode_only = min(_timed(lambda: decode(G, pop[s.elite:])) for _ in range(args.repeats))
        best = {m: min(t) for m, t in times.items()}
        print(f"\ntorch threads: {threads}")
        print(f"  decoding the children's images alone: {decode_only:.4f} s "
              f"({decode_only / best['batched']:.0%} of a batched generation; every method has to do it)")
        for m, t in times.items():
            print(f"  {m:15s} best {best[m]:.4f} s   median {statistics.median(t):.4f} s")
        for m in ("per-individual", "per-image"):
            ratio = best[m] / best["batched"]
            verdict = " (target >= 10x: met)" if m == "per-individual" and ratio >= 10 else (
                " (target >= 10x: NOT met)" if m == "per-individual" else "")
            print(f"  ratio {m} / batched: {ratio:.1f}x{verdict}")


if __name__ == "__main__":
    main()
