"""Benchmark: one generation of notebook 08's latent-set GA, whole population batched vs. loops.

A generation is: make the children (tournament, uniform crossover, random reset) and score them
(decode every child's images with the class's generator, then eqs. 1-4 with the correlation NCC).
Three ways, same population, same generator, measured in the same run and interleaved
(batched, per-individual, per-image, batched, ...) so that a busy machine slows all of them alike:
- batched: ``next_generation`` + ``score_population``, what ``evolve_latents`` uses: the operators
  as tensor expressions over the population, all P x n latent vectors decoded in chunks of 32
  images, one tensor expression for every fitness;
- per-individual: a Python loop that makes one child at a time (a tournament per parent,
  crossover per pair, mutation per child) and scores it (its n images decoded together);
- per-image: the same loop, with one decoder call per image.
The three scorings are checked to agree before timing.

Two numbers per way: the whole generation, and the GA's own work (operators and fitness, on images
decoded beforehand). Decoding is the generator's work and every way has to do it; once it is
batched by individual (40 images per call), larger batches barely speed it up, so the whole
generation cannot be much faster than the per-individual loop. The printout shows the share.

It also shows why: the generator's floating-point operations (counted by torch's FlopCounterMode)
divided by the decoding time give the rate decoding reaches, next to the rate of a large matrix
product measured in the same run (about the most this core computes per second). From these, an
upper bound: even if decoding ran at the matrix-product rate and the GA's own work stayed batched,
a generation could be at most (per-individual time) / (FLOPs / matmul rate + own work) times faster
than the per-individual loop.
Target of issue 10: whole generation, batched >= 10x faster than the per-individual loop.

    python benchmarks/bench_latent_ga.py [--size 32] [--width 32] [--population 20] [--images 40] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from course_lib.evolution import torch_threads
from course_lib.latent_ga import (GASettings, decode, next_generation, random_population, random_reset, score_loop,
                                  score_per_individual, score_population, set_fitness, tournament, uniform_crossover)
from course_lib.models.dcgan import DCGenerator

SCORERS = {"batched": score_population, "per-individual": score_per_individual, "per-image": score_loop}


def children_one_by_one(pop: torch.Tensor, fitness: torch.Tensor, s: GASettings, gen: torch.Generator) -> torch.Tensor:
    """``next_generation`` as a loop: elite first, then the same operators applied one pair at a time."""
    kids = [pop[i] for i in fitness.argsort()[:s.elite].tolist()]
    while len(kids) < len(pop):
        a, b = (pop[tournament(fitness, 1, s.tournament, gen)] for _ in range(2))   # (1, n, latent) each
        a, b = uniform_crossover(a, b, s.crossover, gen)
        kids += [random_reset(child[0], s.mutation, gen) for child in (a, b)][:len(pop) - len(kids)]
    return torch.stack(kids)


def make_generation(way: str, G: torch.nn.Module, originals: torch.Tensor,
                    s: GASettings) -> Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]:
    """One generation (children and their fitness) made the given way."""
    children = next_generation if way == "batched" else children_one_by_one
    score = SCORERS[way]
    return lambda pop, fitness, gen: score(G, children(pop, fitness, s, gen)[s.elite:], originals)


def make_ga_work(way: str, images: torch.Tensor, originals: torch.Tensor,
                 s: GASettings) -> Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]:
    """The GA's own work in one generation, on images decoded beforehand: operators and fitness."""
    if way == "batched":
        return lambda pop, fitness, gen: (next_generation(pop, fitness, s, gen), set_fitness(images, originals))[1]
    return lambda pop, fitness, gen: (children_one_by_one(pop, fitness, s, gen),
                                      torch.cat([set_fitness(ind[None], originals) for ind in images]))[1]


def decode_flops(G: torch.nn.Module, latents: torch.Tensor) -> int:
    """Floating-point operations of one decode of ``latents`` (N, latent), counted by torch."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        G(latents)
    return counter.get_total_flops()


def matmul_rate(n: int = 1024, repeats: int = 5) -> float:
    """FLOP per second of an n x n matrix product (best of ``repeats``): this core's practical peak."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n ** 3 / min(interleaved({"matmul": lambda: a @ b}, repeats)["matmul"])


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds per call of each function, ``repeats`` interleaved rounds after one warm-up call each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    """Time one generation per way and print the ratios."""
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
    for name, fn in SCORERS.items():
        assert torch.allclose(fn(G, pop[:3], originals), fitness[:3], atol=1e-5), f"{name} disagrees"
    children = pop[s.elite:]
    images = decode(G, children)
    flops = decode_flops(G, children.reshape(-1, 100))
    print(f"one generation: {len(children)} children x {s.n_images} images of {args.size}x{args.size}, "
          f"generator width {args.width}; {args.repeats} interleaved repeats; best / median seconds; "
          f"decoding them is {flops / 1e9:.2f} GFLOP")
    for threads in args.threads:
        with torch_threads(threads):
            whole = interleaved({w: lambda w=w: make_generation(w, G, originals, s)(pop, fitness, gen)
                                 for w in SCORERS}, args.repeats)
            own = interleaved({w: lambda w=w: make_ga_work(w, images, originals, s)(pop, fitness, gen)
                               for w in ("batched", "per-individual")}, args.repeats)
            decoding = min(interleaved({"decode": lambda: decode(G, children)}, args.repeats)["decode"])
            peak = matmul_rate()
        best = {w: min(t) for w, t in whole.items()}
        best_own = {w: min(t) for w, t in own.items()}
        print(f"\ntorch threads: {threads}")
        print(f"  decoding the children's images alone: {decoding:.4f} s, "
              f"{decoding / best['batched']:.0%} of a batched generation")
        for w in SCORERS:
            own_text = (f"   GA's own work {1e3 * best_own[w]:7.2f} / {1e3 * statistics.median(own[w]):7.2f} ms"
                        if w in own else "")
            print(f"  {w:15s} whole generation {best[w]:.4f} / {statistics.median(whole[w]):.4f} s{own_text}")
        ratio = best["per-individual"] / best["batched"]
        print(f"  per-individual / batched: whole generation {ratio:.1f}x "
              f"(target >= 10x: {'met' if ratio >= 10 else 'NOT met'}); "
              f"GA's own work {best_own['per-individual'] / best_own['batched']:.1f}x")
        print(f"  per-image / batched: whole generation {best['per-image'] / best['batched']:.1f}x")
        bound = best["per-individual"] / (flops / peak + best_own["batched"])
        print(f"  decoding reaches {flops / decoding / 1e9:.0f} GFLOP/s batched; a 1024 x 1024 matrix product "
              f"{peak / 1e9:.0f} GFLOP/s ({flops / decoding / peak:.0%}); "
              f"upper bound on per-individual / batched at that rate: {bound:.1f}x")


if __name__ == "__main__":
    main()
