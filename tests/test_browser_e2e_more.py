"""End-to-end, the other eight notebooks: 04, 05a-05d, 06, 07 and 08, run from the menu as a student would.

The same checks as test_browser_e2e.py (no error output, widgets rendered, the layout fits, a control
moved and its picture redrawn), in a file of its own so that it runs beside that one.
"""

from __future__ import annotations

import pytest

from browser_fixtures import chromium, run_notebook, server, student  # noqa: F401  (pytest fixtures)

pytestmark = pytest.mark.slow


def test_04_style_strength(student):
    run_notebook(student, "04_style_transfer.ipynb", widgets=1)
    student.set_slider("strength", 0.5, "04")


def test_05a_baseline(student):
    run_notebook(student, "05a_traffic_signs_data_and_baseline.ipynb", widgets=0)


@pytest.mark.parametrize("name", ["05b_vae_per_class", "05c_dcgan_per_class", "05d_ddpm_per_class"])
def test_05bcd_sample_explorer(student, name):
    run_notebook(student, f"{name}.ipynb", widgets=2)
    student.set_slider("seed", 3, name[:3])


def test_06_evolution_explorer(student):
    run_notebook(student, "06_genetic_autoencoder.ipynb", widgets=1)
    student.set_slider("population", 20, "06")


def test_07_latent_explorer(student):
    run_notebook(student, "07_adversarial_vae.ipynb", widgets=2)


def test_08_evolution_browser(student):
    run_notebook(student, "08_latent_evolution.ipynb", widgets=2)
