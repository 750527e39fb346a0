import dataclasses
import random

import numpy as np
import pytest
import torch

from course_lib import seed_everything
from course_lib.profiles import (NOT_STATED, active_profile, choose_settings, doc, ours, profile_changes,
                                 settings_table, source_of)


@dataclasses.dataclass(frozen=True)
class Settings:
    epochs: int = doc("000, section IV-C")
    width: int = ours("not stated; fits a laptop")


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
    assert "Profile: smoke (2 of 2 settings differ from the paper profile)" in out
    epochs_line = next(line for line in out.splitlines() if line.startswith("epochs"))
    assert epochs_line.split() == ["epochs", "1", "300", "document", "000,", "section", "IV-C"]
    width_line = next(line for line in out.splitlines() if line.startswith("width"))
    assert width_line.split()[:4] == ["width", "8", "not", "stated"] and "our choice: not stated; fits" in width_line
    assert choose_settings(PER_PROFILE, "paper") == Settings(300, 64)
    assert "the paper profile's settings" in capsys.readouterr().out


def test_settings_table_shows_the_document_value_only_where_the_document_gives_one():
    table = settings_table(PER_PROFILE["paper"], PER_PROFILE["class"])
    assert table.to_dict("records") == [
        {"setting": "epochs", "this run": 10, "document": 300, "source": "document 000, section IV-C"},
        {"setting": "width", "this run": 64, "document": NOT_STATED, "source": "our choice: not stated; fits a laptop"},
    ]
    fields = {f.name: source_of(f) for f in dataclasses.fields(Settings)}
    assert fields["epochs"].document and not fields["width"].document
    with pytest.raises(ValueError, match="document and section"):
        doc(" ")
    with pytest.raises(ValueError, match="reason"):
        ours("")


def test_settings_without_a_source_say_so():
    @dataclasses.dataclass(frozen=True)
    class Bare:
        epochs: int

    table = settings_table(Bare(3), Bare(1))
    assert table.to_dict("records") == [
        {"setting": "epochs", "this run": 1, "document": NOT_STATED, "source": "(no source recorded)"}]


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
