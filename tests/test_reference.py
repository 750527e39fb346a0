from importlib import resources

import numpy as np
import pandas as pd
import pytest

from course_lib import reference


def test_index_and_files_match():
    index = reference.tables()
    files = {p.name[:-4] for p in (resources.files("course_lib") / "reference_data").iterdir()
             if p.name.endswith(".csv") and p.name != "index.csv"}
    assert set(index.table_id) == files
    assert index.table_id.is_unique
    assert set(index.document) <= {"000", "001", "002", "003", "004"}
    for table_id in index.table_id:
        table = reference.load(table_id)
        assert len(table) > 0 and table.shape[1] >= 2, table_id


def test_table1_of_document_000_holds_the_published_numbers():
    # SPEC.md: Table I (neurons: energy test / validation error), e.g. 7 -> 0.0511 / 0.2253
    table = reference.load("000_table1_energy").set_index("hidden_neurons")
    assert list(table.index) == [1, 2, 5, 7, 9, 12]
    numbers = table.select_dtypes("number")
    assert numbers.shape[1] == 2
    np.testing.assert_allclose(numbers.loc[7].to_numpy(), [0.0511, 0.2253])
    np.testing.assert_allclose(numbers.loc[12].to_numpy(), [0.0533, 0.2508])


def test_compare_sets_ours_beside_the_document():
    doc = reference.load("000_table1_energy")
    metric = doc.select_dtypes("number").columns.drop("hidden_neurons")[0]
    ours = pd.DataFrame({"hidden_neurons": [7.0, 9.0, 3.0], metric: [0.01, 0.02, 0.03]})
    side = reference.compare("000_table1_energy", ours, on="hidden_neurons")
    assert (metric, reference.DOC) in side.columns and (metric, reference.OURS) in side.columns
    assert side.loc["7", (metric, reference.OURS)] == 0.01
    assert side.loc["7", (metric, reference.DOC)] == pytest.approx(0.0511)
    assert np.isnan(side.loc["3", (metric, reference.DOC)])  # ours only: document cell empty
    assert np.isnan(side.loc["1", (metric, reference.OURS)])  # document only: our cell empty
    assert list(side.index) == ["1", "2", "3", "5", "7", "9", "12"]  # numeric keys in numeric order
    text = reference.to_markdown(side)
    assert f"{metric.replace('_', ' ')}: document" in text and "0.0511" in text
    assert "_" not in text.splitlines()[0]  # headers can wrap, so wide tables fit the notebook


def test_compare_errors_are_clear():
    with pytest.raises(KeyError, match="no published table"):
        reference.load("999_nothing")
    with pytest.raises(KeyError, match="this run's table has no column"):
        reference.compare("000_table1_energy", pd.DataFrame({"x": [1]}), on="hidden_neurons")
    with pytest.raises(ValueError, match="no metric column"):
        reference.compare("000_table1_energy", pd.DataFrame({"hidden_neurons": [1], "zzz": [1]}), on="hidden_neurons")


def test_show_table_tags_output_for_the_report(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, metadata=None: shown.append((obj, metadata)))
    reference.show_table(pd.DataFrame({"a": [1.5]}), "My table", table_id="000_table1_energy", note="n")
    obj, meta = shown[0]
    tag = meta[reference.REPORT_KEY]
    assert tag["title"] == "My table" and tag["table_id"] == "000_table1_energy"
    assert "Document 000" in tag["markdown"] and "1.5" in obj.data and obj.data.endswith("n")
