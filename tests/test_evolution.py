import time

import pytest
import torch
from torch import nn

from course_lib.evolution import (distinct_indices, evolve, flatten_params, load_agent, mae_fitness, next_generation,
                                  population_outputs, random_population, unflatten)
from course_lib.ga_widgets import evolution_explorer
from course_lib.models.conv_autoencoder_ga import GAAutoencoder, scale_targets


def digit_like(n: int = 1, seed: int = 0) -> torch.Tensor:
    """Small synthetic 'digits': a bright random stroke blob on a dark background, (n, 1, 28, 28)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    images = []
    for _ in range(n):
        cy, cx, r = 10 + 8 * torch.rand(3, generator=g)
        ring = (((yy - cy) ** 2 + (xx - cx) ** 2).sqrt() - r / 1.5).abs() < 1.5
        images.append(ring.float())
    return torch.stack(images).unsqueeze(1)


@pytest.fixture(scope="module")
def model():
    return GAAutoencoder()


def test_flat_agents_round_trip(model):
    vec = flatten_params(model)
    assert vec.shape == (1635,)
    params = unflatten(model, vec.unsqueeze(0).repeat(3, 1))
    assert params["tconv2.weight"].shape == (3, 10, 1, 5, 5)
    clone = load_agent(GAAutoencoder(), vec)
    torch.testing.assert_close(flatten_params(clone), vec)
    with pytest.raises(ValueError, match="agents of shape"):
        unflatten(model, torch.zeros(3, 10))


def test_random_population_is_seeded_and_leaves_global_rng_alone(model):
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = random_population(model, 4, seed=5)
    assert torch.equal(torch.rand(1), expected_next)
    assert torch.equal(a, random_population(model, 4, seed=5))
    assert not torch.equal(a, random_population(model, 4, seed=6))
    assert len(set(a[:, 0].tolist())) == 4  # every agent has its own initialisation
    with pytest.raises(ValueError, match="at least 2"):
        random_population(model, 1)


def test_mae_fitness_matches_formula():
    out, t = torch.rand(3, 2, 1, 4, 4), torch.rand(2, 1, 4, 4)
    expected = torch.stack([(out[i] - t).abs().mean() for i in range(3)])
    torch.testing.assert_close(mae_fitness(out, t), expected)
    with pytest.raises(ValueError, match="do not match"):
        mae_fitness(out, torch.rand(3, 1, 4, 4))


@pytest.mark.parametrize("k", [1, 10, 200])
def test_mutation_keeps_elite_and_shifts_exactly_k_parameters_by_at_most_one(k):
    rng = torch.Generator().manual_seed(k)
    agents = torch.randn(8, 300)
    fitness = torch.rand(8)
    children = next_generation(agents, fitness, k, rng)
    parent = agents[fitness.argmin()]
    assert torch.equal(children[0], parent)  # the elite, unmutated
    diff = children[1:] - parent
    assert ((diff != 0).sum(1) == k).all()  # exactly k parameters per child (distinct positions)
    assert float(diff.abs().max()) <= 1.0


def test_mutation_statistics_are_uniform():
    rng = torch.Generator().manual_seed(0)
    parent = torch.zeros(2, 50)
    shifts, hits = [], torch.zeros(50)
    for _ in range(400):
        children = next_generation(parent, torch.tensor([0.0, 1.0]), 5, rng)
        mutated = children[1]
        hits += (mutated != 0).float()
        shifts.append(mutated[mutated != 0])
    s = torch.cat(shifts)
    assert abs(float(s.mean())) < 0.05 and abs(float(s.var()) - 1 / 3) < 0.03  # U(-1, 1): mean 0, variance 1/3
    assert float(s.min()) < -0.95 and float(s.max()) > 0.95
    assert float(hits.min()) > 20 and float(hits.max()) < 60  # every position chosen about 40 times
    small = next_generation(parent, torch.tensor([0.0, 1.0]), 50, rng, step=0.1)
    assert float(small[1].abs().max()) <= 0.1


def test_batched_fitness_equals_per_agent_fitness(model):
    x = scale_targets(digit_like(3))
    agents = random_population(model, 7, seed=0)
    loop = mae_fitness(population_outputs(model, agents, x, "loop"), x)
    torch.testing.assert_close(mae_fitness(population_outputs(model, agents, x), x), loop, rtol=0, atol=1e-6)
    torch.testing.assert_close(mae_fitness(population_outputs(model, agents, x, "vmap"), x), loop, rtol=0, atol=1e-6)


def test_vmap_path_for_a_model_without_its_own_batched_forward():
    net = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    agents = random_population(net, 5, seed=0)
    x = torch.rand(6, 4)
    torch.testing.assert_close(population_outputs(net, agents, x), population_outputs(net, agents, x, "loop"))
    with pytest.raises(ValueError, match="method"):
        population_outputs(net, agents, x, "threads")


def test_evolve_lowers_the_error_and_elitism_never_lets_it_rise(model):
    x = scale_targets(digit_like(1))
    run = evolve(model, x, x, population=8, k=10, generations=150, seed=0, progress=False, snapshot_every=50)
    assert run.generations == 150 and len(run.seconds) == 151
    assert all(b2 <= b1 for b1, b2 in zip(run.best, run.best[1:]))
    assert run.best[-1] < 0.8 * run.best[0]
    assert sorted(run.snapshots) == [0, 50, 100, 150] and run.snapshots[150].shape == (1, 1, 28, 28)
    best_model = run.best_model(GAAutoencoder())
    with torch.no_grad():
        assert abs(float((best_model(x) - x).abs().mean()) - run.best[-1]) < 1e-6


def test_evolve_is_deterministic_under_a_seed(model):
    x = scale_targets(digit_like(2))
    a = evolve(model, x, x, population=5, k=3, generations=30, seed=4, progress=False)
    b = evolve(model, x, x, population=5, k=3, generations=30, seed=4, progress=False)
    c = evolve(model, x, x, population=5, k=3, generations=30, seed=5, progress=False)
    assert a.best == b.best and torch.equal(a.agents, b.agents)
    assert a.best != c.best


def test_interrupted_and_resumed_run_equals_uninterrupted(model, tmp_path):
    x = scale_targets(digit_like(2, seed=1))
    settings = dict(population=6, k=4, seed=3, snapshot_every=10, progress=False)
    whole = evolve(model, x, x, generations=45, **settings)
    ckpt = tmp_path / "ga.pt"
    # stopped at generation 17 (e.g. the widget's Stop button) ...
    reached = []
    part = evolve(model, x, x, generations=45, checkpoint=ckpt, checkpoint_every=5,
                  should_stop=lambda: reached[-1] >= 17, on_generation=lambda g, best, outputs: reached.append(g),
                  **settings)
    assert part.generations == 17
    # ... then Ctrl-C at generation 30 ...
    def interrupt(g, best, outputs):
        if g == 30:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        evolve(model, x, x, generations=45, checkpoint=ckpt, checkpoint_every=1000, on_generation=interrupt, **settings)
    # ... and resumed: nothing lost, nothing different
    resumed = evolve(model, x, x, generations=45, checkpoint=ckpt, **settings)
    assert resumed.resumed_from == 30
    assert resumed.best == whole.best and torch.equal(resumed.agents, whole.agents)
    assert sorted(resumed.snapshots) == sorted(whole.snapshots)
    assert all(torch.equal(resumed.snapshots[g], whole.snapshots[g]) for g in whole.snapshots)
    assert all(s2 >= s1 for s1, s2 in zip(resumed.seconds, resumed.seconds[1:]))
    # asking for more generations continues the finished run
    longer = evolve(model, x, x, generations=50, checkpoint=ckpt, **settings)
    assert longer.generations == 50 and longer.best[:46] == whole.best


def test_checkpoint_of_other_settings_is_refused(model, tmp_path):
    x = scale_targets(digit_like(1))
    ckpt = tmp_path / "ga.pt"
    evolve(model, x, x, population=4, k=2, generations=3, checkpoint=ckpt, progress=False)
    with pytest.raises(ValueError, match="other settings"):
        evolve(model, x, x, population=4, k=3, generations=3, checkpoint=ckpt, progress=False)


def test_evolve_rejects_bad_settings_and_restores_threads(model):
    x = scale_targets(digit_like(1))
    threads = torch.get_num_threads()
    for bad, match in ((dict(k=0), "k "), (dict(population=1), "at least 2"), (dict(step=0.0), "step")):
        kwargs = dict(population=4, k=2, generations=2, progress=False) | bad
        with pytest.raises(ValueError, match=match):
            evolve(model, x, x, **kwargs)
    evolve(model, x, x, population=3, k=1, generations=2, progress=False, threads=1)
    assert torch.get_num_threads() == threads


def test_explorer_redraws_on_controls_runs_and_stops():
    images = digit_like(3)
    ui = evolution_explorer(images, labels=["a", "b", "c"], refresh_seconds=0.3)
    assert ui.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    seen = {ui.image.value}
    ui.controls["samples"].value = 3  # what the browser sends
    assert ui.image.value not in seen and "<b>3</b> sample(s)" in ui.info.value
    seen.add(ui.image.value)
    ui.controls["population"].value = 4
    assert ui.image.value not in seen and "Population <b>4</b>" in ui.info.value
    ui.controls["step"].value = 0.3
    assert "uniform(-0.3, 0.3)" in ui.info.value
    ui.controls["generations"].value = 50
    run = ui.run()
    assert run.generations == 50 and "Generation <b>50</b>" in ui.info.value
    assert run.settings["step"] == pytest.approx(0.3)  # the slider's step reached the evolution
    assert ui.last_run() is run
    # background run, stopped with the button
    ui.controls["generations"].value = 20000
    ui.controls["evolve"].click()
    assert ui.controls["evolve"].disabled and not ui.controls["stop"].disabled
    time.sleep(0.5)
    assert "evolving" in ui.busy.value and ui.controls["population"].disabled  # settings locked while it runs
    ui.controls["stop"].click()
    ui.wait(30)
    assert ui.last_run().generations < 20000 and "(stopped)" in ui.info.value
    assert not ui.controls["evolve"].disabled and ui.controls["stop"].disabled
    assert ui.busy.value == "" and not ui.controls["population"].disabled


@pytest.mark.parametrize("k, n", [(1, 5), (3, 3), (10, 1635), (100, 1635)])
def test_distinct_indices_are_distinct_in_range_and_uniform(k, n):
    rng = torch.Generator().manual_seed(1)
    picks = distinct_indices(2000, k, n, rng)
    assert picks.shape == (2000, k) and int(picks.min()) >= 0 and int(picks.max()) < n
    assert all(len(set(row)) == k for row in picks.tolist())
    counts = torch.bincount(picks.flatten(), minlength=n).float()
    expected = 2000 * k / n
    if expected >= 50:  # every index equally likely: counts within a few standard deviations
        assert float((counts - expected).abs().max()) < 5 * expected ** 0.5
    with pytest.raises(ValueError, match="distinct"):
        distinct_indices(1, n + 1, n, rng)


def test_explorer_preview_is_busy_and_estimates_from_timed_generations():
    from course_lib.widgets import BUSY_TEXT
    ui = evolution_explorer(digit_like(2), labels=["a", "b"])
    assert ui.seconds_per_generation() > 0 and "timed over 10 generations after a warm-up" in ui.info.value
    seen = []
    ui.image.observe(lambda _c: seen.append((ui.busy.value, ui.controls["population"].disabled,
                                             ui.controls["evolve"].disabled)), names="value")
    ui.controls["samples"].value = 2  # a new picture (two columns), drawn while busy
    assert seen == [(BUSY_TEXT, True, True)]
    assert ui.busy.value == "" and not ui.controls["population"].disabled and not ui.controls["evolve"].disabled
    assert ui.controls["stop"].disabled  # nothing running: Stop stays off


def test_evolution_figure_before_a_run_draws_no_empty_curve():
    from course_lib.ga_widgets import evolution_figure
    x = digit_like(2)
    fig = evolution_figure(x, x, [0.3], "generation 0", ["a", "b"], generations=500)
    curve = fig.axes[-1]
    assert not curve.lines and curve.get_xlim() == (0, 500)  # not an empty axis over -0.04..0.04
    assert "press Evolve" in curve.texts[0].get_text()
    fig = evolution_figure(x, x, [0.3, 0.2, 0.1], "generation 2", ["a", "b"])
    assert len(fig.axes[-1].lines) == 1
    assert min(t.get_fontsize() for t in (fig.axes[-1].xaxis.label, fig.axes[0].title)) >= 10
