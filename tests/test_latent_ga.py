"""The latent-vector GA of notebook 08: operator statistics, elitism, NCC forms, batched fitness, resume, widgets."""

from __future__ import annotations

import pytest
import torch

from course_lib.latent_ga import (GASettings, evolve_latents, ncc_correlation, ncc_distance, next_generation,
                                  random_reset, score_loop, score_per_individual, score_population, set_diversity,
                                  set_fitness, tournament, uniform_crossover)
from course_lib.models.dcgan import DCGenerator


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def tiny_g() -> DCGenerator:
    torch.manual_seed(0)
    return DCGenerator(latent=8, size=16, channels=1, width=4).eval()


def test_tournament_prefers_the_fittest_more_often_than_chance():
    P, n, k = 20, 40_000, 3
    fitness = torch.randperm(P).float()              # lower is fitter; the best has fitness 0
    picks = tournament(fitness, n, k, _gen())
    best = int(fitness.argmin())
    share = float((picks == best).float().mean())
    expected = 1 - (1 - 1 / P) ** k                  # the best is among the three entrants
    assert share > 2 * (1 / P)                       # far more often than a uniform pick
    assert abs(share - expected) < 0.01
    assert float(fitness[picks].mean()) < float(fitness.mean()) - 3   # winners are better than average
    # the worst individual can only win a tournament made of copies of itself
    worst = int(fitness.argmax())
    assert abs(float((picks == worst).float().mean()) - (1 / P) ** k) < 0.001


def test_uniform_crossover_takes_each_gene_from_either_parent_half_the_time():
    a, b = torch.zeros(200, 40, 100), torch.ones(200, 40, 100)
    c1, c2 = uniform_crossover(a, b, 1.0, _gen())
    assert abs(float(c1.mean()) - 0.5) < 0.005
    assert torch.equal(c1 + c2, a + b)               # the two children are complementary
    # at rate 0.7 about 70 % of the pairs are crossed, the rest copied unchanged
    c1, _ = uniform_crossover(a, b, 0.7, _gen(1))
    crossed = (c1.flatten(1).sum(1) > 0).float().mean()
    assert abs(float(crossed) - 0.7) < 0.08
    assert torch.equal(uniform_crossover(a, b, 0.0, _gen())[0], a)


def test_random_reset_mutates_two_percent_of_genes_from_a_standard_normal():
    genes = torch.full((100, 40, 100), 7.0)          # 400,000 genes, a value N(0, 1) never gives exactly
    out = random_reset(genes, 0.02, _gen())
    hit = out != 7.0
    assert abs(float(hit.float().mean()) - 0.02) < 0.001
    fresh = out[hit]
    assert abs(float(fresh.mean())) < 0.05 and abs(float(fresh.std()) - 1) < 0.05


def test_elitism_keeps_the_best_individual_unchanged():
    pop = torch.randn(20, 5, 8, generator=_gen())
    fitness = torch.rand(20, generator=_gen(2))
    child = next_generation(pop, fitness, GASettings(population=20, n_images=5), _gen(3))
    assert child.shape == pop.shape
    assert torch.equal(child[0], pop[fitness.argmin()])
    assert not torch.equal(child[1:], pop[1:])


def test_ncc_of_an_image_with_itself():
    img = torch.rand(3, 1, 16, 16) + 0.1
    assert torch.allclose(ncc_correlation(img, img), torch.ones(3))
    assert torch.allclose(ncc_distance(img, img), torch.zeros(3))
    assert torch.allclose(ncc_correlation(img, 2 * img), torch.ones(3))   # brightness scale does not matter
    other = torch.rand(3, 1, 16, 16)
    # for images of equal energy the printed eq. 4 is 2 - 2 x correlation: minimising it maximises similarity
    energy = lambda t: t.flatten(1).norm(dim=1)[:, None, None, None]  # noqa: E731
    other = other * energy(img) / energy(other)
    assert torch.allclose(ncc_distance(img, other), 2 - 2 * ncc_correlation(img, other), atol=1e-5)


def test_ncc_forms_match_their_formulas_with_broadcasting():
    # images (P, n, C, H, W) against one centroid per individual (P, 1, C, H, W), as set_fitness calls them
    a, b = torch.rand(4, 6, 3, 5, 7, generator=_gen()), torch.rand(4, 1, 3, 5, 7, generator=_gen(1))
    sums = lambda t: t.sum((-3, -2, -1))  # noqa: E731
    norms = torch.sqrt(sums(a * a) * sums(b * b))
    assert ncc_correlation(a, b).shape == (4, 6)
    assert torch.allclose(ncc_correlation(a, b), sums(a * b) / norms, atol=1e-6)
    assert torch.allclose(ncc_distance(a, b), sums((a - b) ** 2) / norms, atol=1e-6)


def test_batched_fitness_matches_the_loops(tiny_g):
    pop = torch.randn(4, 6, 8, generator=_gen())
    originals = torch.rand(10, 1, 16, 16, generator=_gen(1))
    for ncc in ("correlation", "distance"):
        batched = score_population(tiny_g, pop, originals, ncc)
        assert torch.allclose(batched, score_loop(tiny_g, pop, originals, ncc), atol=1e-5)
        assert torch.allclose(batched, score_per_individual(tiny_g, pop, originals, ncc), atol=1e-5)


def test_fitness_by_hand():
    images = torch.tensor([[[[[1.0, 0.0]]], [[[0.0, 1.0]]]]])          # (P=1, n=2, 1, 1, 2)
    originals = torch.tensor([[[[1.0, 1.0]]]])                          # (1, 1, 1, 2)
    # centroid = (1+0+1, 0+1+1)/3 = (2/3, 2/3); NCC of (1,0) with it = (2/3) / (1 * sqrt(8/9)) = 1/sqrt(2)
    assert torch.allclose(set_fitness(images, originals), torch.tensor([2 ** -0.5]))
    with pytest.raises(ValueError, match="expected images"):
        set_fitness(images[0], originals)
    with pytest.raises(ValueError, match="ncc must be"):
        set_fitness(images, originals, "pearson")


def test_diversity_is_zero_for_copies():
    img = torch.rand(1, 1, 8, 8) + 0.1
    assert set_diversity(img.repeat(5, 1, 1, 1)) == pytest.approx(0, abs=1e-6)
    assert set_diversity(torch.rand(5, 1, 8, 8)) > 0.05


def test_evolution_never_loses_its_best_and_resumes_exactly(tiny_g, tmp_path):
    originals = torch.rand(10, 1, 16, 16, generator=_gen(1))
    s = GASettings(population=6, n_images=4, generations=6)
    full = evolve_latents(tiny_g, originals, s, seed=5, progress=False)
    assert full.generations == 6 and len(full.best_sets) == 7
    assert all(b2 <= b1 + 1e-7 for b1, b2 in zip(full.best, full.best[1:]))
    path = tmp_path / "ga.pt"
    evolve_latents(tiny_g, originals, GASettings(population=6, n_images=4, generations=3), seed=5,
                   checkpoint=path, progress=False)
    resumed = evolve_latents(tiny_g, originals, s, seed=5, checkpoint=path, progress=False)
    assert resumed.resumed_from == 3
    assert resumed.best == pytest.approx(full.best)
    assert torch.equal(resumed.best_set(), full.best_set())
    assert torch.equal(full.best_set(0), resumed.best_set(0))
    with pytest.raises(ValueError, match="other settings"):
        evolve_latents(tiny_g, originals, s, seed=6, checkpoint=path, progress=False)
    with pytest.raises(ValueError, match="generation must be"):
        full.best_set(99)


def test_settings_reject_bad_values():
    with pytest.raises(ValueError, match="mutation rate"):
        GASettings(mutation=1.5)
    with pytest.raises(ValueError, match="elite"):
        GASettings(population=3, elite=3)


def test_widgets_update_when_a_control_moves(tiny_g):
    from course_lib.latent_ga_widgets import evolution_browser, live_evolution
    originals = torch.rand(10, 1, 16, 16, generator=_gen(1))
    s = GASettings(population=6, n_images=4, generations=3)
    runs = {c: evolve_latents(tiny_g, originals, s, seed=i, progress=False) for i, c in enumerate(["a", "b"])}
    ui = evolution_browser(runs, {"a": tiny_g, "b": tiny_g})
    before_img, before_info = ui.image.value, ui.info.value
    ui.controls["generation"].value = 0
    assert ui.info.value != before_info and ui.image.value != before_img
    before = ui.info.value
    ui.controls["class"].value = "b"
    assert ui.info.value != before
    live = live_evolution(tiny_g, originals, s)
    before = live.image.value
    live.controls["mutation"].value = 0.3
    assert live.image.value != before
    before = live.info.value
    live.controls["tournament"].value = 1
    assert live.info.value != before
    with pytest.raises(KeyError, match="no generator"):
        evolution_browser(runs, {"a": tiny_g})


def test_gain_claims_measure_best_seed_mean_gain_and_seeds_above():
    import pandas as pd

    from course_lib.latent_ga import gain_claims
    table = pd.DataFrame({"row": ["Original", "Model-0", "Model-1", "Augmented", "Seed-0", "Seed-1", "Seed-2"],
                          "arm": ["a"] * 3 + ["b"] * 4, "accuracy": [9.0, 0.5, 0.7, 9.0, 0.55, 0.61, 0.8]})
    got = gain_claims(table, "a", "b")  # summary rows (no '-') are ignored: 9.0 would break every value
    assert got["best_seed_gain"] == pytest.approx(0.2) and got["mean_gain"] == pytest.approx(1.96 / 3 - 0.6)
    assert got["seeds_above_baseline"] == 2 and got["seeds"] == 3
    with pytest.raises(ValueError, match="expected seed rows for arms"):
        gain_claims(table, "a", "zzz")
    with pytest.raises(KeyError, match="missing"):
        gain_claims(table.drop(columns="arm"), "a", "b")
