"""The supervisor of document 004: a genetic algorithm over sets of GAN latent vectors, one per class.

An individual is a *set* of ``n_images`` latent vectors, a tensor (n_images, latent); its genes are
the n_images x latent numbers (Table 3: genotype length = number of images x latent dimension).
A population of P individuals is a (P, n_images, latent) tensor, and every step below works on the
whole population at once: one decoder call for all P x n_images images, one fitness computation.

Table 3: population 20, elite 1, tournament of 3, uniform crossover at rate 0.7, random-reset
mutation from N(0, 1) at 0.02 per gene, 500 generations, 40 images per set.

Fitness (eqs. 1-4), minimised:  T = I ++ O (the individual's images and the class's originals),
C = mean image of T, F = mean over i in I of NCC(i, C). Eq. 4 as printed is
sum((A-B)^2) / sqrt(sum(A^2) sum(B^2)), a *normalised squared distance*; the text asks for a
similarity (and reports F between 0.99 and 1), which is the uncentred normalised cross-correlation
sum(A*B) / sqrt(sum(A^2) sum(B^2)) (no mean is subtracted: the cosine of the two pixel vectors). Both are here: :func:`ncc_correlation`, :func:`ncc_distance`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from course_lib.evolution import torch_threads
from course_lib.train import fingerprint, load_verified, save_atomic


@dataclass(frozen=True)
class GASettings:
    """Table 3 of document 004 (defaults) and the set size."""

    population: int = 20
    generations: int = 500
    n_images: int = 40
    elite: int = 1
    tournament: int = 3
    crossover: float = 0.7
    mutation: float = 0.02

    def __post_init__(self) -> None:
        if self.population < 2 or not 0 <= self.elite < self.population:
            raise ValueError(f"need population >= 2 and 0 <= elite < population, got {self.population}, {self.elite}")
        if self.tournament < 1 or self.n_images < 1 or self.generations < 0:
            raise ValueError("tournament and n_images must be at least 1 and generations at least 0")
        for name in ("crossover", "mutation"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} rate must be between 0 and 1, got {getattr(self, name)}")


# ----------------------------------------------------------------------------- the operators
def random_population(size: int, n_images: int, latent: int, gen: torch.Generator) -> torch.Tensor:
    """(size, n_images, latent) latent vectors drawn from N(0, 1), the generator's prior."""
    return torch.randn(size, n_images, latent, generator=gen)


def tournament(fitness: torch.Tensor, n: int, k: int, gen: torch.Generator) -> torch.Tensor:
    """Indices of n parents, each the fittest (lowest F) of k individuals drawn at random."""
    entrants = torch.randint(len(fitness), (n, k), generator=gen)          # (n, k)
    winner = fitness[entrants].argmin(dim=1, keepdim=True)                 # minimisation
    return entrants.gather(1, winner).squeeze(1)


def uniform_crossover(a: torch.Tensor, b: torch.Tensor, rate: float,
                      gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """With probability ``rate`` a pair swaps each gene by a coin flip; otherwise both are copied."""
    crossed = torch.rand(len(a), *[1] * (a.dim() - 1), generator=gen) < rate  # one decision per pair
    swap = (torch.rand(a.shape, generator=gen) < 0.5) & crossed             # one coin per gene
    return torch.where(swap, b, a), torch.where(swap, a, b)


def random_reset(genes: torch.Tensor, rate: float, gen: torch.Generator) -> torch.Tensor:
    """Each gene, with probability ``rate``, is replaced by a fresh draw from N(0, 1)."""
    hit = torch.rand(genes.shape, generator=gen) < rate
    return torch.where(hit, torch.randn(genes.shape, generator=gen), genes)


def next_generation(pop: torch.Tensor, fitness: torch.Tensor, s: GASettings, gen: torch.Generator) -> torch.Tensor:
    """Elite kept unchanged first, then children by tournament -> uniform crossover -> random reset."""
    elite = pop[fitness.argsort()[:s.elite]]
    n_children = len(pop) - s.elite
    n_pairs = (n_children + 1) // 2
    parents = pop[tournament(fitness, 2 * n_pairs, s.tournament, gen)]
    c1, c2 = uniform_crossover(parents[0::2], parents[1::2], s.crossover, gen)
    children = torch.cat([c1, c2])[:n_children]
    return torch.cat([elite, random_reset(children, s.mutation, gen)])


# ----------------------------------------------------------------------------- fitness, eqs. 1-4
# Both forms reduce without building A*B or A*A: at the document's 132x132, a population's images
# are 53 MB, and each such product costs another 53 MB pass (41 ms instead of 3.6 ms per generation).
def ncc_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Uncentred NCC, sum(A*B) / sqrt(sum(A*A) sum(B*B)) over each image's pixels: 1 for identical images."""
    dims = (-3, -2, -1)
    dot = torch.einsum("...chw,...chw->...", a, b)                      # sum(A*B), batched matrix products
    return dot / (torch.linalg.vector_norm(a, dim=dims) * torch.linalg.vector_norm(b, dim=dims))


def ncc_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Eq. 4 as printed: sum((A-B)*(A-B)) / sqrt(sum(A*A) sum(B*B)); 0 for identical images."""
    dims = (-3, -2, -1)
    norms = torch.linalg.vector_norm(a, dim=dims) * torch.linalg.vector_norm(b, dim=dims)
    return torch.linalg.vector_norm(a - b, dim=dims).square() / norms


NCC: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "correlation": ncc_correlation, "distance": ncc_distance}


def set_fitness(images: torch.Tensor, originals: torch.Tensor, ncc: str = "correlation") -> torch.Tensor:
    """F of every individual: images (P, n, C, H, W), originals (N, C, H, W) -> (P,)."""
    if images.dim() != 5 or images.shape[2:] != originals.shape[1:]:
        raise ValueError(f"expected images (P, n, C, H, W) matching originals (N, C, H, W); "
                         f"got {tuple(images.shape)} and {tuple(originals.shape)}")
    if ncc not in NCC:
        raise ValueError(f"ncc must be one of {list(NCC)}, got {ncc!r}")
    n, n_orig = images.shape[1], len(originals)
    centroid = (images.sum(1) + originals.sum(0)) / (n + n_orig)   # eqs. 1-2: mean image of T = I ++ O, (P, C, H, W)
    return NCC[ncc](images, centroid[:, None]).mean(1)             # eq. 3: mean NCC(i, C) over i in I


@torch.no_grad()
def decode(G: nn.Module, pop: torch.Tensor, chunk: int = 32) -> torch.Tensor:
    """All images of a population: (P, n, latent) -> (P, n, C, H, W), in chunks of ``chunk`` images.

    Measured on 2 CPU cores (``benchmarks/bench_latent_ga.py``): 760 images of 32x32 take 64 ms in
    chunks of 32 and 96 ms in chunks of 64; larger batches no longer fit the caches.
    """
    P, n, latent = pop.shape
    flat = pop.reshape(P * n, latent)
    out = torch.cat([G(flat[i:i + chunk]) for i in range(0, len(flat), chunk)])
    return out.reshape(P, n, *out.shape[1:])


@torch.no_grad()
def score_population(G: nn.Module, pop: torch.Tensor, originals: torch.Tensor, ncc: str = "correlation") -> torch.Tensor:
    """Fitness (P,) of a whole population: one batched decode, one batched fitness."""
    return set_fitness(decode(G, pop), originals, ncc)


@torch.no_grad()
def score_loop(G: nn.Module, pop: torch.Tensor, originals: torch.Tensor, ncc: str = "correlation") -> torch.Tensor:
    """The same fitness, one individual and one image at a time (the baseline of the benchmark)."""
    fn = NCC[ncc]
    scores = []
    orig_sum = originals.sum(0)
    for individual in pop:                                       # loop over individuals ...
        images = [G(z[None])[0] for z in individual]             # ... and over their images
        centroid = (torch.stack(images).sum(0) + orig_sum) / (len(images) + len(originals))
        scores.append(sum(float(fn(img, centroid)) for img in images) / len(images))
    return torch.tensor(scores)


@torch.no_grad()
def score_per_individual(G: nn.Module, pop: torch.Tensor, originals: torch.Tensor,
                         ncc: str = "correlation") -> torch.Tensor:
    """The same fitness, one individual at a time (its images decoded together)."""
    return torch.cat([set_fitness(G(ind)[None], originals, ncc) for ind in pop])


def set_diversity(images: torch.Tensor) -> float:
    """Mean over pairs of images in a set of 1 - correlation (0: all images alike); images (n, C, H, W)."""
    flat = images.flatten(1)
    unit = flat / flat.norm(dim=1, keepdim=True)
    sim = unit @ unit.T
    n = len(images)
    return float((1 - sim).sum() / (n * (n - 1)))


# ----------------------------------------------------------------------------- the loop
@dataclass
class LatentEvolution:
    """One class's run: best and mean fitness per generation, the best set of every generation."""

    best: list[float] = field(default_factory=list)      # best F of generations 0..G
    mean: list[float] = field(default_factory=list)      # population mean F
    best_sets: list[torch.Tensor] = field(default_factory=list)  # (n_images, latent) per generation
    population: torch.Tensor | None = None
    fitness: torch.Tensor | None = None
    seconds: float = 0.0
    settings: dict = field(default_factory=dict)
    resumed_from: int = 0

    @property
    def generations(self) -> int:
        """Generations run (0 is the random start)."""
        return len(self.best) - 1

    def best_set(self, generation: int | None = None) -> torch.Tensor:
        """The best individual's latent vectors (n_images, latent) at ``generation`` (default: the last)."""
        g = self.generations if generation is None else generation
        if not 0 <= g <= self.generations:
            raise ValueError(f"generation must be between 0 and {self.generations}, got {generation}")
        return self.best_sets[g]


def evolve_latents(G: nn.Module, originals: torch.Tensor, settings: GASettings = GASettings(), *, seed: int = 0,
                   ncc: str = "correlation", checkpoint: Path | str | None = None, checkpoint_every: int = 50,
                   progress: bool = True, desc: str = "generations", threads: int | None = 1,
                   on_generation: Callable[[int, float], None] | None = None) -> LatentEvolution:
    """Evolve sets of latent vectors for generator ``G`` so that their images are far from the class centroid.

    ``originals`` are the class's training images (N, C, H, W) in G's output range. With ``checkpoint``
    the run is saved atomically every ``checkpoint_every`` generations and at the end; a second call
    resumes it (or loads it when finished). ``threads``: torch threads during the run (one by default:
    decoding in chunks of 32 images gains little from a second thread, and loses a lot on shared cores).
    """
    with torch_threads(threads):
        return _evolve(G, originals, settings, seed=seed, ncc=ncc, checkpoint=checkpoint,
                       checkpoint_every=checkpoint_every, progress=progress, desc=desc, on_generation=on_generation)


def _evolve(G: nn.Module, originals: torch.Tensor, settings: GASettings, *, seed: int, ncc: str,
            checkpoint: Path | str | None, checkpoint_every: int, progress: bool, desc: str,
            on_generation: Callable[[int, float], None] | None) -> LatentEvolution:
    s = settings
    G.eval()
    latent = G.latent
    if originals.dim() != 4:
        raise ValueError(f"originals must be (N, C, H, W), got {tuple(originals.shape)}")
    key = {**asdict(s), "seed": seed, "ncc": ncc, "latent": latent,
           "G": fingerprint(torch.cat([p.flatten() for p in G.state_dict().values() if p.is_floating_point()])),
           "originals": fingerprint(originals)}
    key.pop("generations")
    gen = torch.Generator().manual_seed(seed)
    path = Path(checkpoint) if checkpoint is not None else None
    run = LatentEvolution(settings=key)
    state = load_verified(path)
    if state is not None:
        if state["settings"] != key:
            raise ValueError(f"checkpoint {path.name} was made with other settings, generator or data; delete it")
        run = LatentEvolution(list(state["best"]), list(state["mean"]), list(state["best_sets"].unbind(0)),
                              state["population"], state["fitness"], state["seconds"], key,
                              resumed_from=len(state["best"]) - 1)
        gen.set_state(state["rng"])
    else:
        run.population = random_population(s.population, s.n_images, latent, gen)
        run.fitness = score_population(G, run.population, originals, ncc)
        run.best.append(float(run.fitness.min()))
        run.mean.append(float(run.fitness.mean()))
        run.best_sets.append(run.population[run.fitness.argmin()].clone())

    def save() -> None:
        if path is not None:
            save_atomic({"best": run.best, "mean": run.mean, "best_sets": torch.stack(run.best_sets),
                         "population": run.population, "fitness": run.fitness, "seconds": run.seconds,
                         "rng": gen.get_state(), "settings": key}, path)

    bar = tqdm(total=s.generations, initial=min(run.generations, s.generations), desc=desc, disable=not progress,
               leave=False)
    start = time.perf_counter() - run.seconds
    for g in range(run.generations + 1, s.generations + 1):
        pop = next_generation(run.population, run.fitness, s, gen)
        # the elite rows are unchanged individuals: they keep their scores, only the children are decoded
        elite_fit = run.fitness.sort().values[:s.elite]
        fitness = torch.cat([elite_fit, score_population(G, pop[s.elite:], originals, ncc)])
        run.population, run.fitness = pop, fitness
        run.best.append(float(fitness.min()))
        run.mean.append(float(fitness.mean()))
        run.best_sets.append(pop[fitness.argmin()].clone())
        run.seconds = time.perf_counter() - start
        if path is not None and g % checkpoint_every == 0:
            save()
        bar.update(1)
        bar.set_postfix(best=f"{run.best[-1]:.5f}")
        if on_generation is not None:
            on_generation(g, run.best[-1])
    bar.close()
    if path is not None and (run.generations > run.resumed_from or not path.exists()):
        save()
    return run


def gain_claims(table: pd.DataFrame, baseline: str, augmented: str, metric: str = "accuracy") -> dict[str, float]:
    """Document 004's text claims measured on a Table-4-shaped table (columns row, arm, metric; seed rows 'X-<n>').

    best_seed_gain: best augmented seed minus the baseline seeds' mean; mean_gain: augmented mean minus
    baseline mean; seeds_above_baseline: augmented seeds above the baseline mean; seeds: their number.
    """
    missing = [c for c in ("row", "arm", metric) if c not in table.columns]
    if missing:
        raise KeyError(f"expected a Table-4-shaped table with columns row, arm, {metric}; missing {missing}")
    per_seed = table[table["row"].astype(str).str.contains("-")]
    base = per_seed.loc[per_seed["arm"] == baseline, metric].astype(float)
    aug = per_seed.loc[per_seed["arm"] == augmented, metric].astype(float)
    if base.empty or aug.empty:
        raise ValueError(f"expected seed rows for arms {baseline!r} and {augmented!r}; "
                         f"found arms {sorted(set(per_seed['arm']))}")
    base_mean = float(base.mean())
    return {"best_seed_gain": float(aug.max()) - base_mean, "mean_gain": float(aug.mean()) - base_mean,
            "seeds_above_baseline": float((aug > base_mean).sum()), "seeds": float(len(aug))}


__all__ = ["GASettings", "gain_claims", "random_population", "tournament", "uniform_crossover", "random_reset", "next_generation",
           "ncc_correlation", "ncc_distance", "NCC", "set_fitness", "decode", "score_population", "score_loop",
           "score_per_individual", "set_diversity", "LatentEvolution", "evolve_latents"]
