"""Mutation-only evolution of a network's weights (document 002), fast enough to watch.

An *agent* is one flat vector of all the network's parameters (its genotype, "direct encoding");
a population of P agents is a (P, n) tensor. Every generation:

1. every new agent is scored by its mean absolute error on the training images, all of them in ONE
   batched forward pass (the model's ``population_forward`` if it has one, else
   ``torch.func.vmap`` over ``torch.func.functional_call``), never a Python loop over agents;
2. :func:`next_generation`: the fittest agent is copied over the whole population and every copy
   but one gets k randomly chosen parameters shifted by uniform(-1, 1). The unmutated copy (the
   elite) keeps its score, so the best error never goes up.

:func:`evolve` runs that loop with a progress bar, a history of the best error per generation,
snapshots of the best agent's outputs, and a checkpoint that resumes an interrupted run exactly.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call, vmap
from tqdm.auto import tqdm

from course_lib.train import fingerprint, load_verified, save_atomic

Params = dict[str, torch.Tensor]


# ----------------------------------------------------------------------------- genotype <-> network
def layout(model: nn.Module) -> list[tuple[str, torch.Size]]:
    """(name, shape) of every parameter of ``model``, in the order of the flat vector."""
    return [(name, p.shape) for name, p in model.named_parameters()]


def flatten_params(model: nn.Module) -> torch.Tensor:
    """All parameters of ``model`` as one flat vector (n,)."""
    return nn.utils.parameters_to_vector(model.parameters()).detach().clone()


def unflatten(model: nn.Module, agents: torch.Tensor) -> Params:
    """(P, n) flat agents -> {name: (P, *shape)} views, as ``functional_call`` takes them."""
    names, shapes = zip(*layout(model))
    sizes = [s.numel() for s in shapes]
    if agents.dim() != 2 or agents.shape[1] != sum(sizes):
        raise ValueError(f"expected agents of shape (P, {sum(sizes)}), got {tuple(agents.shape)}")
    chunks = torch.split(agents, sizes, dim=1)
    return {name: c.reshape(len(agents), *s) for name, c, s in zip(names, chunks, shapes)}


def load_agent(model: nn.Module, agent: torch.Tensor) -> nn.Module:
    """Copy one flat agent (n,) into ``model``'s parameters; returns the model."""
    nn.utils.vector_to_parameters(agent.detach().clone(), model.parameters())
    return model


def random_population(model: nn.Module, size: int, seed: int = 0) -> torch.Tensor:
    """``size`` agents (size, n), each from the model's own random initialisation, reproducible by ``seed``."""
    if size < 2:
        raise ValueError(f"a population needs at least 2 agents, got {size}")
    keep = flatten_params(model)
    agents = []
    with torch.random.fork_rng(devices=[]):  # leaves the caller's random stream untouched
        torch.manual_seed(seed)
        for _ in range(size):
            for module in model.modules():
                if module is not model and hasattr(module, "reset_parameters"):
                    module.reset_parameters()
            agents.append(flatten_params(model))
    load_agent(model, keep)
    return torch.stack(agents)


# ----------------------------------------------------------------------------- evaluation
def vmap_forward(model: nn.Module, params: Params, x: torch.Tensor) -> torch.Tensor:
    """Outputs (P, N, ...) of P parameter sets on the same batch x: vmap over functional_call."""
    return vmap(lambda one: functional_call(model, one, (x,)))(params)


@torch.no_grad()
def population_outputs(model: nn.Module, agents: torch.Tensor, x: torch.Tensor,
                       method: str = "batched") -> torch.Tensor:
    """Outputs (P, N, ...) of every agent on x: 'batched' (one pass), 'vmap' or 'loop' (the slow baseline)."""
    if method == "loop":
        return loop_outputs(model, agents, x)
    if method == "batched" and hasattr(model, "population_forward"):
        return model.population_forward(agents, x)
    params = unflatten(model, agents)
    if method in ("batched", "vmap"):
        return vmap_forward(model, params, x)
    raise ValueError(f"method must be 'batched', 'vmap' or 'loop', got {method!r}")


@torch.no_grad()
def loop_outputs(model: nn.Module, agents: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The per-agent baseline: load each agent into the model in turn and run it (benchmarks only)."""
    keep = flatten_params(model)
    outputs = [load_agent(model, agent)(x) for agent in agents]
    load_agent(model, keep)
    return torch.stack(outputs)


def mae_fitness(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean absolute error of each agent, (P, N, ...) vs. (N, ...) -> (P,); lower is fitter."""
    if outputs.shape[1:] != targets.shape:
        raise ValueError(f"outputs {tuple(outputs.shape)} do not match targets {tuple(targets.shape)} per agent")
    # MAE_i = mean over samples and pixels of |output_i - target|
    return (outputs - targets).abs().flatten(1).mean(1)


# ----------------------------------------------------------------------------- the GA step
def distinct_indices(rows: int, k: int, n: int, rng: torch.Generator) -> torch.Tensor:
    """(rows, k) indices into range(n), distinct within each row, every k-subset equally likely.

    Few picks from many (k * k <= 4 n, the GA's usual case): draw with replacement and redraw the
    rare rows with a repeat, a few microseconds. Otherwise: the k smallest of n uniform numbers.
    Sorting n random numbers per row, the obvious way, took most of a generation's time.
    """
    if not 1 <= k <= n:
        raise ValueError(f"cannot pick {k} distinct indices out of {n}")
    if k * k > 4 * n:
        return torch.rand(rows, n, generator=rng).topk(k, dim=1, largest=False).indices
    picks = torch.randint(n, (rows, k), generator=rng)
    while True:
        ordered = picks.sort(dim=1).values
        repeated = (ordered[:, 1:] == ordered[:, :-1]).any(dim=1)     # rows with an index twice
        if not repeated.any():
            return picks
        picks[repeated] = torch.randint(n, (int(repeated.sum()), k), generator=rng)


def next_generation(agents: torch.Tensor, fitness: torch.Tensor, k: int, rng: torch.Generator,
                    step: float = 1.0) -> torch.Tensor:
    """Select the fittest agent, copy it over the population, shift k random parameters of every copy but one."""
    parent = agents[fitness.argmin()]                                   # select: the lowest error wins
    children = parent.repeat(len(agents), 1)                            # copy it into every slot
    n_mutants, n_params = len(agents) - 1, agents.shape[1]
    where = distinct_indices(n_mutants, k, n_params, rng)               # k distinct parameters each
    shift = (torch.rand(n_mutants, k, generator=rng) * 2 - 1) * step   # uniform(-1, 1) times step
    children[1:].scatter_add_(1, where, shift)                          # mutate; children[0] stays the parent
    return children


# ----------------------------------------------------------------------------- the loop
@dataclass
class Evolution:
    """A (possibly resumed) run: final population, best error and wall-clock per generation, snapshots."""

    agents: torch.Tensor                     # (P, n) the current population
    fitness: torch.Tensor                    # (P,) its errors
    best_outputs: torch.Tensor               # (N, ...) outputs of the fittest agent
    best: list[float] = field(default_factory=list)      # best MAE of generation 0, 1, ..., G
    seconds: list[float] = field(default_factory=list)   # wall-clock seconds since the start, per generation
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)  # generation -> best agent's outputs
    settings: dict = field(default_factory=dict)
    resumed_from: int = 0                    # generations loaded from a checkpoint, not run in this call

    @property
    def generations(self) -> int:
        """Generations run so far (generation 0 is the random start)."""
        return len(self.best) - 1

    def best_agent(self) -> torch.Tensor:
        """The flat parameters (n,) of the fittest agent."""
        return self.agents[self.fitness.argmin()].clone()

    def best_model(self, model: nn.Module) -> nn.Module:
        """``model`` loaded with the fittest agent's parameters."""
        return load_agent(model, self.best_agent()).eval()

    def first_below(self, threshold: float) -> tuple[int, float] | None:
        """(generation, seconds) at which the best MAE first fell below ``threshold``, or None."""
        for g, (b, s) in enumerate(zip(self.best, self.seconds)):
            if b < threshold:
                return g, s
        return None


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch threads (None: leave the setting alone), then restore it."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def evolve(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, *, population: int, k: int,
           generations: int, step: float = 1.0, seed: int = 0, snapshot_every: int = 0, checkpoint: Path | str | None = None,
           checkpoint_every: int = 500, progress: bool = True, desc: str = "generations", threads: int | None = 1,
           should_stop: Callable[[], bool] | None = None,
           on_generation: Callable[[int, float, torch.Tensor], None] | None = None) -> Evolution:
    """Evolve ``model``'s weights so that model(x) matches ``targets``, for ``generations`` generations.

    Each child gets ``k`` parameters shifted by uniform(-step, step); the document's step is 1.

    With ``checkpoint``, the state is saved atomically every ``checkpoint_every`` generations and when
    the loop ends or is interrupted; calling again with the same file resumes exactly where it stopped
    (or continues a finished run when more generations are asked for). ``on_generation(g, best_mae,
    best_outputs)`` is called after each generation; ``should_stop()`` returning True ends the run early.
    ``threads``: torch threads during the run. One is the default: every operation here takes well
    under a millisecond, and a second thread mostly waits for the first (or for a busy core).
    """
    with torch_threads(threads):
        return _evolve(model, x, targets, population=population, k=k, generations=generations, step=step, seed=seed,
                       snapshot_every=snapshot_every, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                       progress=progress, desc=desc, should_stop=should_stop, on_generation=on_generation)


def _evolve(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, *, population: int, k: int,
            generations: int, step: float, seed: int, snapshot_every: int, checkpoint: Path | str | None,
            checkpoint_every: int, progress: bool, desc: str, should_stop: Callable[[], bool] | None,
            on_generation: Callable[[int, float, torch.Tensor], None] | None) -> Evolution:
    n_params = sum(p.numel() for p in model.parameters())
    if not 1 <= k <= n_params:
        raise ValueError(f"k (parameters mutated per child) must be between 1 and {n_params}, got {k}")
    if generations < 0:
        raise ValueError(f"generations must be 0 or more, got {generations}")
    if len(x) != len(targets):
        raise ValueError(f"{len(x)} inputs but {len(targets)} targets")
    if population < 2:
        raise ValueError(f"a population needs at least 2 agents, got {population}")
    if not step > 0:
        raise ValueError(f"step (half-width of the uniform mutation) must be positive, got {step}")
    settings = {"population": population, "k": k, "step": float(step), "seed": seed, "n_params": n_params,
                "data": fingerprint(x) + fingerprint(targets)}
    rng = torch.Generator().manual_seed(seed)
    path = Path(checkpoint) if checkpoint is not None else None

    state = load_verified(path)
    if state is not None:
        if state["settings"] != settings:
            raise ValueError(f"checkpoint {path.name} was made with other settings or data "
                             f"({state['settings']} vs. {settings}); delete it or choose another file")
        run = Evolution(state["agents"], state["fitness"], state["best_outputs"], list(state["best"]),
                        list(state["seconds"]), dict(state["snapshots"]), settings,
                        resumed_from=len(state["best"]) - 1)
        rng.set_state(state["rng"])
        if progress:
            verb = "Loaded a finished run" if run.generations >= generations else "Resuming a run"
            print(f"{verb} of {run.generations} generations from {path.name} (asked for {generations}).")
    else:
        agents = random_population(model, population, seed)
        outputs = population_outputs(model, agents, x)
        fitness = mae_fitness(outputs, targets)
        best = int(fitness.argmin())
        run = Evolution(agents, fitness, outputs[best].clone(), [float(fitness[best])], [0.0], {}, settings)
        if snapshot_every:
            run.snapshots[0] = run.best_outputs
    rng_state = rng.get_state()  # the state that goes with the committed generation

    def save() -> None:
        if path is not None:
            save_atomic({"agents": run.agents, "fitness": run.fitness, "best_outputs": run.best_outputs,
                         "best": run.best, "seconds": run.seconds, "snapshots": run.snapshots, "rng": rng_state,
                         "settings": settings}, path)

    offset = time.perf_counter() - run.seconds[-1]
    bar = tqdm(total=generations, initial=min(run.generations, generations), desc=desc, disable=not progress,
               leave=False)
    try:
        for g in range(run.generations + 1, generations + 1):
            children = next_generation(run.agents, run.fitness, k, rng, step)
            outputs = population_outputs(model, children[1:], x)     # the P-1 mutants in one pass
            # the elite (children[0]) is the unchanged parent: it keeps its score and its outputs
            fitness = torch.cat([run.fitness.min().reshape(1), mae_fitness(outputs, targets)])   # (P,)
            best = int(fitness.argmin())
            best_outputs = run.best_outputs if best == 0 else outputs[best - 1].clone()
            # commit the generation (agents, scores, log and random state together)
            run.agents, run.fitness, run.best_outputs, rng_state = children, fitness, best_outputs, rng.get_state()
            run.best.append(float(fitness[best]))
            run.seconds.append(time.perf_counter() - offset)
            if snapshot_every and (g % snapshot_every == 0 or g == generations):
                run.snapshots[g] = best_outputs
            bar.update(1)
            if g % 50 == 0:
                bar.set_postfix(best_mae=f"{run.best[-1]:.4f}")
            if on_generation is not None:
                on_generation(g, run.best[-1], best_outputs)
            if path is not None and g % checkpoint_every == 0:
                save()
            if should_stop is not None and should_stop():
                break
    finally:  # also on KeyboardInterrupt: an interrupted run loses nothing
        bar.close()
        save()
    return run
