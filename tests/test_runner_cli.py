import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_lib.cli import main
from course_lib.runner import build_report, collect_tables, find_notebooks, run_notebooks


def write_nb(path, *sources):
    nb = new_notebook(cells=[new_markdown_cell("# tiny")] + [new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture
def notebooks(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    write_nb(folder / "01_good.ipynb",
             "import os, pandas as pd\nfrom course_lib.reference import show_table",
             "show_table(pd.DataFrame({'width': [7], 'energy': [0.05]}).set_index('width'), "
             "f\"energy ({os.environ['COURSE_PROFILE']})\")")
    write_nb(folder / "02_bad.ipynb", "x = 1", "raise RuntimeError('student broke it')", "y = 2")
    return folder


def test_find_notebooks_by_number_and_name(notebooks):
    assert [p.name for p in find_notebooks(None, notebooks)] == ["01_good.ipynb", "02_bad.ipynb"]
    assert [p.name for p in find_notebooks(["02"], notebooks)] == ["02_bad.ipynb"]
    assert [p.name for p in find_notebooks(["01_good"], notebooks)] == ["01_good.ipynb"]
    with pytest.raises(ValueError, match="matches 0"):
        find_notebooks(["09"], notebooks)


def test_run_collects_tables_and_reports_failures(notebooks, tmp_path):
    out = tmp_path / "executed"
    results = run_notebooks(find_notebooks(None, notebooks), "smoke", out, cell_timeout=120, progress=False)
    good, bad = results
    assert good.ok and not bad.ok and "student broke it" in bad.error
    executed = nbformat.read(out / "01_good.ipynb", as_version=4)
    tables = collect_tables(executed)
    assert len(tables) == 1 and tables[0]["title"] == "energy (smoke)"  # profile reached the kernel
    partial = nbformat.read(out / "02_bad.ipynb", as_version=4)
    assert partial.metadata["course_lib"]["ok"] is False
    md, html = build_report(out, tmp_path / "report")
    text = md.read_text()
    assert "energy (smoke)" in text and re.search(r"\|\s+7 \|\s+0.05 \|", text)
    assert "FAILED: RuntimeError: student broke it" in text
    assert "<table>" in html.read_text()


def test_cli_run_and_report(notebooks, tmp_path, capsys):
    code = main(["run", "--profile", "smoke", "--notebooks-dir", str(notebooks), "--out", str(tmp_path / "x"),
                 "--report", str(tmp_path / "rep"), "01"])
    assert code == 0 and (tmp_path / "rep.md").exists()
    assert main(["report", "--dir", str(tmp_path / "x"), "--report", str(tmp_path / "rep2")]) == 0
    assert "energy (smoke)" in (tmp_path / "rep2.md").read_text()
    assert main(["report", "--dir", str(tmp_path / "empty")]) == 2
    assert "no executed notebooks" in capsys.readouterr().err


def test_cli_data_list_and_fetch_offline(cache, capsys):
    assert main(["data", "list"]) == 0
    assert "fashion-mnist" in capsys.readouterr().out
    assert main(["data", "fetch", "fashion-mnist"]) == 1  # offline in tests: fails, and says why
    assert "failed" in capsys.readouterr().out
    assert main(["data", "fetch", "imagenet"]) == 2


KERNEL_REPORT = """\
import psutil
from ipykernel.kernelapp import IPKernelApp
app = IPKernelApp.instance()
print("transport", app.transport, "ip", app.ip)
# ipykernel always opens one listener of its own on 127.0.0.1, for output from forked child processes
fork_pipe = getattr(app.iopub_thread, "_pipe_port", None)
print("inet", [c.laddr for c in psutil.Process().net_connections(kind="inet") if c.laddr.port != fork_pipe])
"""


def test_kernels_use_ipc_sockets_and_no_tcp_port(tmp_path, capfd):
    import psutil

    from course_lib.runner import ipc_kernel_config
    config = ipc_kernel_config(tmp_path)
    assert config.KernelManager.transport == "ipc" and config.KernelManager.ip == str(tmp_path / "kernel")
    folder = tmp_path / "nbs"
    folder.mkdir()
    write_nb(folder / "01_where.ipynb", KERNEL_REPORT)
    before = {c.laddr for c in psutil.Process().net_connections(kind="inet")}
    (result,) = run_notebooks(find_notebooks(None, folder), "smoke", tmp_path / "out", cell_timeout=120, progress=False)
    assert result.ok, result.error
    text = nbformat.read(tmp_path / "out" / "01_where.ipynb", as_version=4).cells[1].outputs[0]["text"]
    transport, ip = re.search(r"transport (\S+) ip (\S+)", text).groups()
    assert transport == "ipc" and "course-lib-ipc-" in ip and ip.endswith("/kernel")
    assert "inet []" in text  # no TCP (or UDP) socket in the kernel apart from ipykernel's fork pipe
    assert not Path(ip).parent.exists()  # the private socket folder is gone after the run
    assert {c.laddr for c in psutil.Process().net_connections(kind="inet")} <= before  # nor does the runner
    assert "without encryption" not in capfd.readouterr().err  # the kernel's TCP warning is gone


def test_progress_inside_a_long_cell_reaches_the_runner(tmp_path):
    from course_lib.runner import progress_text
    assert progress_text("<div>epochs:  84%</div>|<span> 84/100 [00:05&lt;00:01]</span>") == "epochs: 84% | 84/100 [00:05<00:01]"
    assert progress_text("loss 0.3\nepoch 7/10 done\n") == "epoch 7/10 done"
    assert progress_text("no counter here") is None
    folder = tmp_path / "nbs"
    folder.mkdir()
    write_nb(folder / "01_long.ipynb",
             "from tqdm.auto import tqdm\nfor i in tqdm(range(3), desc='epochs'):\n    pass",
             "for e in range(1, 3):\n    print(f'epoch {e}/2')")
    seen = []
    (result,) = run_notebooks(find_notebooks(None, folder), "smoke", tmp_path / "out", cell_timeout=120,
                              progress=False, on_progress=seen.append)
    assert result.ok, result.error
    assert any("3/3" in text for text in seen), seen  # the cell's own progress bar, while it ran
    assert "epoch 2/2" in seen


def test_the_report_gives_each_notebooks_time_and_peak_memory(tmp_path):
    folder = tmp_path / "nbs"
    folder.mkdir()
    write_nb(folder / "01_big.ipynb", "import numpy as np\nx = np.ones(40_000_000)  # 320 MB, touched\nprint(x.sum())")
    write_nb(folder / "02_small.ipynb", "print(1)")
    big, small = run_notebooks(find_notebooks(None, folder), "smoke", tmp_path / "out", cell_timeout=120,
                               progress=False)
    assert big.ok and small.ok
    assert big.peak_mb is not None and big.peak_mb > 320 and small.peak_mb < big.peak_mb - 250
    md, _ = build_report(tmp_path / "out", tmp_path / "report")
    row = next(line for line in md.read_text().splitlines() if line.startswith("| 01_big"))
    assert int(row.split("|")[-2]) > 320
