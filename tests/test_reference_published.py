"""Every published number in ``course_lib/reference_data`` pinned against the document's own text.

Each expected table below was transcribed from the document named in its test (table and section
cited), independently of the CSV; a CSV value that drifts from the document fails here.
"""

from __future__ import annotations

import numpy as np
import pytest

from course_lib import reference


def _assert_table(table_id: str, key: str, expected: dict[object, list[float]], columns: list[str]) -> None:
    """The CSV has exactly the expected rows (in order) and each value equals the document's."""
    table = reference.load(table_id)
    assert set([key, *columns]) <= set(table.columns), f"{table_id}: columns {list(table.columns)}"
    assert [str(k) for k in table[key]] == [str(k) for k in expected], f"{table_id}: rows {list(table[key])}"
    got = table.set_index(table[key].astype(str))[columns].astype(float)
    for k, values in expected.items():
        np.testing.assert_allclose(got.loc[str(k)].to_numpy(), values, rtol=0, atol=1e-12,
                                   err_msg=f"{table_id}, row {k}")


# ---- document 000 (Oberndorfer Mejia & Quintero Montoya, "Hybrid Methods") -------------------------

def test_000_table1_energy_matches_table_I_section_IV_A():
    # Table I, section IV-A: number of neurons -> energy test, validation error
    _assert_table("000_table1_energy", "hidden_neurons", {
        1: [0.0580, 0.2574], 2: [0.1579, 0.3661], 5: [0.0524, 0.2477],
        7: [0.0511, 0.2253], 9: [0.0499, 0.2385], 12: [0.0533, 0.2508],
    }, ["energy_test", "validation_error"])


def test_000_table2_keras_loss_matches_table_II_section_IV_A():
    # Table II, section IV-A: hidden neurons -> training, testing, validation loss (no 12-neuron row)
    _assert_table("000_table2_keras_loss", "hidden_neurons", {
        1: [0.028, 0.026, 0.029], 2: [0.004, 0.004, 0.004], 5: [0.025, 0.023, 0.025],
        7: [0.002, 0.003, 0.003], 9: [2.455e-07, 4.111e-07, 2.094e-07],
    }, ["train_loss", "test_loss", "validation_loss"])


def test_000_table3_discriminator_matches_table_III_section_IV_C():
    # Table III, section IV-C: probability > 0.5 -> 0.67 called real, < 0.5 -> 0.33 called fake
    table = reference.load("000_table3_discriminator").set_index("verdict")
    assert list(table.index) == ["real", "fake"]
    assert list(table.discriminator_score) == ["> 0.5", "< 0.5"]
    np.testing.assert_allclose(table.fraction_of_course_digits.to_numpy(), [0.67, 0.33], rtol=0, atol=1e-12)


def test_000_style_claims_match_sections_II_E_IV_D_V_D():
    # Section IV-D names the TF Hub module and Munch's The Scream; V-D: red / pastel hues dominate;
    # the document says nothing about flicker. Only qualitative claims: pin their key words.
    table = reference.load("000_style_claims").set_index("claim")
    assert list(table.index) == ["model", "style", "colour drift", "pastel", "flicker"]
    assert "arbitrary-image-stylization-v1-256/2" in table.loc["model", "document"]
    assert "Munch" in table.loc["style", "document"] and "Scream" in table.loc["style", "document"]
    assert "red" in table.loc["colour drift", "document"]
    assert "pastel" in table.loc["pastel", "document"] and "red" in table.loc["pastel", "document"]
    assert table.loc["flicker", "document"] == "not discussed"
    assert table.loc["colour drift", "section"] == "V-D"


# ---- document 001 (Leal & Trenti, generative augmentation of traffic signs) ------------------------

_CLASSES = [12, 13, 24, 38, 39, 44, 46, 49, 50, 6]  # the column order of Tables 4-6


@pytest.mark.parametrize("table_id, inception, fid, ssim", [
    # Table 4, section 3.1 (VAE)
    ("001_table4_vae_metrics",
     [1.87, 1.78, 1.84, 2.11, 2.06, 2.17, 1.91, 2.13, 1.62, 1.67],
     [0.96, 0.86, 0.87, 0.82, 0.81, 0.87, 0.84, 0.82, 0.83, 0.75],
     [0.06, 0.08, 0.07, 0.05, 0.06, 0.06, 0.06, 0.06, 0.06, 0.05]),
    # Table 5, section 3.2 (DCGAN)
    ("001_table5_dcgan_metrics",
     [1.90, 1.66, 1.81, 1.86, 1.80, 2.05, 2.28, 2.29, 1.54, 1.55],
     [1.17, 1.05, 0.98, 0.90, 0.88, 0.89, 0.86, 0.84, 0.84, 0.76],
     [0.05, 0.05, 0.06, 0.04, 0.05, 0.05, 0.05, 0.05, 0.05, 0.04]),
    # Table 6, section 3.3 (DDPM)
    ("001_table6_ddpm_metrics",
     [2.00, 2.06, 2.01, 2.17, 2.29, 2.24, 2.28, 2.10, 1.90, 2.07],
     [1.18, 1.04, 1.01, 0.89, 0.83, 0.79, 0.77, 0.74, 0.77, 0.70],
     [0.01, 0.01, 0.02, 0.02, 0.01, 0.02, 0.02, 0.02, 0.02, 0.02]),
])
def test_001_per_class_metrics_match_tables_4_to_6(table_id: str, inception: list[float],
                                                   fid: list[float], ssim: list[float]) -> None:
    _assert_table(table_id, "class", {c: [i, f, s] for c, i, f, s in zip(_CLASSES, inception, fid, ssim)},
                  ["inception_score", "fid", "ssim"])


def test_001_classifier_matches_section_3_4_text():
    # Section 3.4: baseline 55 % on 28 validation images, Kaggle 0.2676; VAE 98.33/100/100 % on
    # 78/128/528 images, Kaggle 0.5909/0.5513/0.6050; GAN 72.98/97.41/100 %, Kaggle 0.5067/0.6476/0.6670;
    # DDPM 82.84/90.84 %, Kaggle 0.3968/0.5536 (no 500-image DDPM run, section 2.4).
    expected = [
        ("baseline", 0, 0.2676, 55, 28),
        ("vae", 50, 0.5909, 98.33, 78), ("vae", 100, 0.5513, 100, 128), ("vae", 500, 0.6050, 100, 528),
        ("dcgan", 50, 0.5067, 72.98, 78), ("dcgan", 100, 0.6476, 97.41, 128), ("dcgan", 500, 0.6670, 100, 528),
        ("ddpm", 50, 0.3968, 82.84, 78), ("ddpm", 100, 0.5536, 90.84, 128),
    ]
    table = reference.load("001_classifier")
    columns = ["generator", "n_generated_per_class", "kaggle_score", "validation_balanced_accuracy_pct",
               "validation_images"]
    assert list(table.columns) == columns
    assert [tuple(r) for r in table[columns[:2]].itertuples(index=False)] == [e[:2] for e in expected]
    np.testing.assert_allclose(table[columns[2:]].to_numpy(float), np.array([e[2:] for e in expected], float),
                               rtol=0, atol=1e-12)
    # the validation sizes are the 28 original images plus the generated ones the text names
    assert (table.validation_images - table.n_generated_per_class == 28).all()


# ---- document 003 (Zemouri, semi-supervised adversarial VAE) --------------------------------------

def test_003_text_claims_match_sections_4_4_1_and_4_4_2():
    # 4.4.1 / Fig. 7d: Fashion-MNIST classes 5, 7 and 9 (the shoes) grouped together, the bag cluster (8)
    # isolated; 4.4.2 A / Fig. 9b: Omniglot cannot be rebuilt with Kz = 2 except by forcing beta to 0.5
    table = reference.load("003_text_claims").set_index("claim")
    assert list(table.index) == ["fashion_shoes_together", "fashion_bag_apart", "omniglot_kz2_only_beta"]
    assert [int(c) for c in table.loc["fashion_shoes_together", "value"].split()] == [5, 7, 9]
    assert int(table.loc["fashion_bag_apart", "value"]) == 8
    assert float(table.loc["omniglot_kz2_only_beta", "value"]) == 0.5
    assert list(table.data_set) == ["Fashion-MNIST", "Fashion-MNIST", "Omniglot"]
    assert table.section.str.contains("4.4.1").tolist() == [True, True, False]


# ---- document 004 (Fernandes, Correia & Machado, latent space exploration) -------------------------

_004_ROWS = {  # Table 4, section 4: accuracy, precision, recall, F1, AUROC, average precision
    "Original": [0.578, 0.623, 0.580, 0.582, 0.719, 0.487],
    "Model-0": [0.593, 0.610, 0.598, 0.592, 0.731, 0.508],
    "Model-1": [0.575, 0.648, 0.580, 0.588, 0.719, 0.497],
    "Model-2": [0.571, 0.599, 0.569, 0.563, 0.712, 0.469],
    "Model-3": [0.571, 0.621, 0.575, 0.581, 0.715, 0.472],
    "Model-4": [0.579, 0.641, 0.580, 0.587, 0.718, 0.486],
    "Augmented": [0.586, 0.633, 0.590, 0.594, 0.725, 0.496],
    "Seed-0": [0.589, 0.645, 0.587, 0.594, 0.724, 0.498],
    "Seed-1": [0.589, 0.632, 0.596, 0.596, 0.729, 0.495],
    "Seed-2": [0.539, 0.586, 0.534, 0.537, 0.689, 0.446],
    "Seed-3": [0.596, 0.642, 0.604, 0.609, 0.734, 0.508],
    "Seed-4": [0.618, 0.663, 0.629, 0.633, 0.750, 0.536],
}
_004_METRICS = ["accuracy", "precision", "recall", "f1", "auroc", "average_precision"]


def test_004_table4_matches_table_4_section_4():
    _assert_table("004_table4_classifier", "row", _004_ROWS, _004_METRICS)
    table = reference.load("004_table4_classifier").set_index("row")
    assert list(table.arm) == ["original"] * 6 + ["augmented"] * 6


def test_004_summary_rows_are_the_means_of_the_five_runs_to_the_printed_precision():
    # Table 4's caption: Original / Augmented are the means of the five Model-X / Seed-X rows. The means
    # of the rounded rows agree with the printed summaries to within one unit of the third decimal.
    table = reference.load("004_table4_classifier").set_index("row")[_004_METRICS]
    for summary, prefix in (("Original", "Model-"), ("Augmented", "Seed-")):
        runs = table[table.index.str.startswith(prefix)]
        assert len(runs) == 5
        np.testing.assert_allclose(runs.mean().to_numpy(), table.loc[summary].to_numpy(), rtol=0, atol=1e-3)


def test_every_published_table_has_a_pinning_test():
    # a new CSV in reference_data must get its own test above (this list is the tests' coverage)
    pinned = {"000_table1_energy", "000_table2_keras_loss", "000_table3_discriminator", "000_style_claims",
              "001_table4_vae_metrics", "001_table5_dcgan_metrics", "001_table6_ddpm_metrics",
              "001_classifier", "004_table4_classifier", "004_text_claims",
              "003_text_claims"}
    assert set(reference.tables().table_id) == pinned, set(reference.tables().table_id) ^ pinned


def test_004_text_claims_match_the_abstract_and_sections_4_5_and_5():
    # Abstract: "up to 4 %" and "on average by 1 %"; section 4.5: 4 of 5 seeds beat the baseline's
    # average, best fitness between 0.99 and 1 within an interval of 0.01; section 5: accuracy +0.8 %, F1 +1.2 %.
    table = reference.load("004_text_claims").set_index("claim")
    expected = {"best_seed_gain": 0.04, "mean_gain": 0.01, "seeds_above_baseline": 4, "seeds": 5,
                "conclusion_accuracy_gain": 0.008, "conclusion_f1_gain": 0.012,
                "fitness_low": 0.99, "fitness_high": 1.0, "fitness_band": 0.01}
    assert list(table.index) == list(expected)
    np.testing.assert_allclose(table.value.to_numpy(float), list(expected.values()), rtol=0, atol=1e-12)
    assert table.loc["conclusion_f1_gain", "metric"] == "f1"
    assert (table.unit > 0).all()


def test_004_text_claims_agree_with_its_own_table_4():
    # the document's words and its Table 4 tell the same story, to the precision the words state
    from course_lib.latent_ga import gain_claims
    claims = reference.load("004_text_claims").set_index("claim")
    table4 = reference.load("004_table4_classifier")
    for metric, prefix in (("accuracy", ""), ("accuracy", "conclusion_accuracy_"), ("f1", "conclusion_f1_")):
        measured = gain_claims(table4, "original", "augmented", metric)
        for key in (["best_seed_gain", "mean_gain", "seeds_above_baseline", "seeds"] if not prefix else ["gain"]):
            name = prefix + key if prefix else key
            value = measured["mean_gain"] if prefix else measured[key]
            assert abs(value - claims.loc[name, "value"]) <= claims.loc[name, "unit"] / 2 + 1e-9, (name, value)
