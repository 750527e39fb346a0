"""Provenance rules of the notebooks (issue 18), checked from their source without running them.

1. Every settings dataclass a notebook passes to ``choose_settings`` says where each field comes from:
   ``doc("<document>, <section>: ...")`` or ``ours("why")`` (course_lib.profiles). Dataclasses defined in
   a notebook are read with ``ast``; those of the library (sign_generators) are imported.
2. No static markdown in a result section ("What the document reported vs. what we got", "Document vs.
   this run", "What we see", ...) states a measured number: such sentences are rendered by code cells
   from the run and from ``reference_data``.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
LIBRARY = ROOT / "course_lib"
DOCUMENT_OF = {"00": "000", "01": "000", "02": "000", "03": "000", "04": "000", "05": "001", "06": "002",
               "07": "003", "08": "004"}


def _param(path: Path) -> object:
    """A pytest parameter for one notebook, named by its file."""
    return pytest.param(path, id=path.stem)


def _code_tree(source: str) -> ast.Module | None:
    """A code cell's syntax tree, IPython magics and shell lines removed (None if it does not parse)."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


# ---------------------------------------------------------------------------------------------------------
# 1. settings provenance
# ---------------------------------------------------------------------------------------------------------

def _called_name(node: ast.AST) -> str | None:
    """The name a call calls (``f(...)`` or ``module.f(...)``), else None."""
    if isinstance(node, ast.Call):
        node = node.func
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            return node.attr
    return None


def field_problems(tree: ast.Module, class_name: str, document: str) -> list[str]:
    """What is wrong with the provenance of ``class_name``'s fields in ``tree`` (empty: every field has a source)."""
    classes = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == class_name]
    if not classes:
        return [f"class {class_name} not found"]
    problems = []
    for stmt in classes[0].body:
        if not isinstance(stmt, ast.AnnAssign) or not isinstance(stmt.target, ast.Name):
            continue
        name = stmt.target.id
        kind = _called_name(stmt.value) if stmt.value is not None else None
        if kind not in ("doc", "ours"):
            problems.append(f"{class_name}.{name}: no doc(...) or ours(...) source")
            continue
        args = stmt.value.args
        text = args[0].value if args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str) else None
        if not text or not text.strip():
            problems.append(f"{class_name}.{name}: {kind}() needs a non-empty literal string")
        elif kind == "doc" and not text.startswith(f"{document},"):
            problems.append(f"{class_name}.{name}: doc() should name document {document} first, got {text!r}")
    return problems


def settings_classes(tree: ast.Module) -> set[str]:
    """Names of the classes whose instances fill the dict(s) a notebook passes to ``choose_settings``."""
    passed = set()
    for node in ast.walk(tree):
        if _called_name(node) == "choose_settings" and node.args and isinstance(node.args[0], ast.Name):
            passed.add(node.args[0].id)
    classes = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in passed for t in node.targets) \
                and isinstance(node.value, ast.Dict):
            classes |= {name for v in node.value.values if (name := _called_name(v))}
    return classes


def notebook_tree(path: Path) -> ast.Module:
    """All parseable code cells of a notebook as one module."""
    body = []
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code" and (tree := _code_tree(cell.source)) is not None:
            body.extend(tree.body)
    return ast.Module(body=body, type_ignores=[])


def _uses_choose_settings(path: Path) -> bool:
    """Whether any code cell of the notebook calls choose_settings."""
    return any(c.cell_type == "code" and "choose_settings(" in c.source for c in nbformat.read(path, as_version=4).cells)


@pytest.mark.parametrize("path", [_param(p) for p in NOTEBOOKS if _uses_choose_settings(p)])
def test_notebook_settings_have_sources(path: Path) -> None:
    """Every field of every settings dataclass a notebook defines and passes to choose_settings has a source."""
    tree = notebook_tree(path)
    classes = settings_classes(tree)
    assert classes, f"{path.name}: calls choose_settings but no settings dataclass was found"
    document = DOCUMENT_OF[path.name[:2]]
    problems = [p for name in sorted(classes) for p in field_problems(tree, name, document)]
    assert not problems, f"{path.name}: " + "; ".join(problems)


def test_library_settings_have_sources() -> None:
    """sign_generators' settings (05b-05e) carry a source on every field, and doc() names document 001."""
    from course_lib import sign_generators as sg
    from course_lib.profiles import source_of

    types = {type(s) for per_profile in sg.SETTINGS.values() for s in per_profile.values()}
    types |= {type(s) for s in sg.STUDY.values()}
    assert {t.__name__ for t in types} >= {"VAESettings", "DCGANSettings", "DDPMSettings", "StudySettings"}
    missing = [f"{t.__name__}.{f.name}" for t in types for f in dataclasses.fields(t) if source_of(f) is None]
    assert not missing, f"fields without a source: {missing}"
    wrong = [f"{t.__name__}.{f.name}" for t in types for f in dataclasses.fields(t)
             if source_of(f).document and not source_of(f).where.startswith("001,")]
    assert not wrong, f"doc() fields that do not name document 001: {wrong}"


def test_library_settings_classes_are_all_or_nothing() -> None:
    """A library dataclass that gives one field a source gives every field one (found by reading the code)."""
    problems = []
    for path in sorted(LIBRARY.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            fields = [s for s in cls.body if isinstance(s, ast.AnnAssign)]
            sourced = [s for s in fields if s.value is not None and _called_name(s.value) in ("doc", "ours")]
            if sourced and len(sourced) != len(fields):
                problems += [f"{path.name}: {cls.name}.{s.target.id}" for s in fields if s not in sourced]
    assert not problems, f"fields without a source in settings classes: {problems}"


SAMPLE_SETTINGS = '''
from dataclasses import dataclass
from course_lib.profiles import doc, ours

@dataclass(frozen=True)
class Settings:
    epochs: int = doc("000, section V-C: 300 epochs")
    width: int = ours("fits a laptop")
    lr: float            # a plain field: no source

SETTINGS = {"paper": Settings(300, 64, 2e-4), "class": Settings(10, 8, 2e-4), "smoke": Settings(1, 4, 2e-4)}
S = choose_settings(SETTINGS)
'''


def test_checker_finds_a_field_without_source() -> None:
    """The checker above fails on a plain field, on a doc() naming the wrong document, and passes a sourced class."""
    tree = ast.parse(SAMPLE_SETTINGS)
    assert settings_classes(tree) == {"Settings"}
    assert field_problems(tree, "Settings", "000") == ["Settings.lr: no doc(...) or ours(...) source"]
    assert any("document 004" in p for p in field_problems(tree, "Settings", "004"))
    fixed = ast.parse(SAMPLE_SETTINGS.replace("lr: float            # a plain field: no source",
                                              'lr: float = ours("the usual DCGAN rate")'))
    assert field_problems(fixed, "Settings", "000") == []


# ---------------------------------------------------------------------------------------------------------
# 2. measured numbers in the static markdown of result sections
# ---------------------------------------------------------------------------------------------------------

RESULT_HEADING = re.compile(r"document vs\.? (this|the) run|what the document reported|what we (saw|see|got)"
                            r"|document reported vs", re.I)
RESULT_PARAGRAPH = re.compile(r"^\W*(what we (see|saw)|what the numbers say|what to look for)\b", re.I)
# a measured number: a percentage, a decimal number, an "N of M" count, or an "N times" ratio
MEASURED = re.compile(r"\d+(?:\.\d+)?\s*%|(?<![\w.])\d*\.\d+(?!\w|\.\d)|\b\d+ of (?:the |its |our |their )?\d+\b"
                      r"|\b\d+(?:\.\d+)?\s*(?:times|x)\b(?! *\d)", re.I)
# setup facts and references that look like numbers: settings (beta = 0.1, ±0.3), sections, tables, figures,
# equations, intervals such as [0.1, 0.9], image sizes such as 28x28; math and code are removed first
SETUP_FACT = re.compile(r"(?:=|±|≤|≥|<|>)\s*\d*\.?\d+|\b(?:sections?|tables?|figs?\.?|figures?|eqs?\.|equations?"
                        r"|algorithms?)\s+[\dIVX]+(?:[.-]\d+)*|\[\s*\d*\.?\d+\s*,\s*\d*\.?\d+\s*\]|\d+\s*x\s*\d+"
                        r"|\bv\d+(?:[.-]\d+)*", re.I)
STRIP = re.compile(r"\$\$.*?\$\$|\$[^$]*\$|`[^`]*`|\]\([^)]*\)", re.S)


def result_text(cells: list) -> list[tuple[int, str]]:
    """(cell index, line) of every static markdown line that lies in a result section."""
    found, in_result = [], False
    for index, cell in enumerate(cells):
        if cell.cell_type != "markdown":
            continue
        paragraph_start = True
        for line in cell.source.splitlines():
            stripped = line.strip()
            if stripped.startswith("#"):
                in_result = bool(RESULT_HEADING.search(stripped))
                paragraph_start = True
                continue
            if paragraph_start and RESULT_PARAGRAPH.search(stripped):
                in_result = True
            paragraph_start = not stripped
            if in_result and stripped:
                found.append((index, line))
    return found


def measured_numbers(cells: list) -> list[str]:
    """Measured-looking numbers stated in the static markdown of result sections, as 'cell N: match in line'."""
    hits = []
    for index, line in result_text(cells):
        text = SETUP_FACT.sub(" ", STRIP.sub(" ", line))
        hits += [f"cell {index}: {m.group(0)!r} in {line.strip()!r}" for m in MEASURED.finditer(text)]
    return hits


@pytest.mark.parametrize("path", [_param(p) for p in NOTEBOOKS])
def test_result_sections_state_no_static_numbers(path: Path) -> None:
    """Result sections render measured numbers from the run or reference_data, never from static markdown."""
    cells = nbformat.read(path, as_version=4).cells
    hits = measured_numbers(cells)
    assert not hits, f"{path.name}: render these from the run or reference_data: " + "; ".join(hits)


def _md(source: str) -> nbformat.NotebookNode:
    """A markdown cell for the checker's own test."""
    return nbformat.v4.new_markdown_cell(source)


def test_number_checker_flags_results_and_spares_setup_facts() -> None:
    """The heuristic fails on results in result sections, and ignores setup facts and other sections."""
    cells = [_md("## 3. Training\n\nIn our trials it reached 97.5 % after 40 epochs."),
             _md("## What the document reported vs. what we got\n\n- The network reached 97.5 % accuracy.\n"
                 "- 7 of 10 outputs were separated, 20 times faster, in 2.25 s.\n"
                 "- Settings: beta = 0.005, shifts of ±0.3, targets in [0.1, 0.9], 28x28 images, section 4.2, "
                 "eq. 6 and $10^{-7}$ in math, `0.5` in code.\n\n## Questions\n\n1. Why 0.5?"),
             _md("What we see (your numbers are above):\n\n- a score of 0.83")]
    hits = measured_numbers(cells)
    assert [h.split(":")[0] for h in hits] == ["cell 1"] * 4 + ["cell 2"]
    assert "'97.5 %'" in hits[0] and "'7 of 10'" in hits[1] and "'20 times'" in hits[2] and "'2.25'" in hits[3]
    assert "'0.83'" in hits[4]
