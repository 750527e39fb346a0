import dataclasses
import random

import numpy as np
import pytest
import torch

from course_lib import seed_everything
from course_lib.profiles import active_profile, choose_settings, profile_changes


@dataclasses.dataclass(frozen=True)
class Settings:
    epochs: int
    width: int


PER_PROFILE = {"paper": Settings(300, 64), "class": Settings(10, 64), "smoke": Settings(1, 8)}


def test_active_profile_reads_environment(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    assert active_profile() == "class"
    monkeypatch.setenv("COURSE_PROFILE", " Smoke ")
    assert active_profile() == "smoke"
    monkeypatch.setenv("COURSE_PROFILE", "huge")
    with pytest.raises(ValueError, match="smoke, class, paper"):
        active_profile()


def test_choose_settings_prints_changes(capsys):
    chosen = choose_settings(PER_PROFILE, "smoke")
    assert chosen == Settings(1, 8)
    out = capsys.readouterr().out
    assert "Profile: smoke" in out and "epochs" in out and "width" in out
    assert choose_settings(PER_PROFILE, "paper") == Settings(300, 64)
    assert "document's own" in capsys.readouterr().out


def test_profile_changes_lists_only_differences():
    table = profile_changes(PER_PROFILE["paper"], PER_PROFILE["class"])
    assert table.to_dict("records") == [{"setting": "epochs", "document": 300, "this run": 10}]


def test_choose_settings_needs_every_profile():
    with pytest.raises(KeyError, match="smoke"):
        choose_settings({"paper": Settings(1, 1), "class": Settings(1, 1)}, "class")


def test_seed_everything_repeats_all_generators():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()
    seed_everything(7)
    first = draw()
    seed_everything(7)
    assert draw() == first
    seed_everything(8)
    assert draw() != first
    with pytest.raises(ValueError):
        seed_everything(-1)
