"""The thread policy: one place decides it, and every way of starting a kernel applies it before torch loads."""

import json
import subprocess
import sys

import nbformat
import pytest
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager
from nbformat.v4 import new_code_cell, new_notebook

from course_lib import kernel, runtime
from course_lib.runner import run_notebooks

PROBE = "import os, torch; print(os.environ.get('OMP_WAIT_POLICY'), torch.get_num_threads())"


def test_threads_leave_one_core_free_and_obey_the_override():
    assert runtime.threads({}, cores=1) == 1
    assert runtime.threads({}, cores=2) == 1
    assert runtime.threads({}, cores=8) == 7
    assert runtime.threads({"COURSE_THREADS": "3"}, cores=2) == 3
    for bad in ("0", "two", "-1", "1.5"):
        with pytest.raises(ValueError, match="COURSE_THREADS"):
            runtime.threads({"COURSE_THREADS": bad}, cores=4)


def test_thread_env_sets_a_passive_wait_unless_the_user_chose_one():
    env = runtime.thread_env({}, cores=4)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE", "COURSE_THREADS": "3", "OMP_NUM_THREADS": "3",
                   "MKL_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "3"}
    assert runtime.thread_env({"OMP_WAIT_POLICY": "ACTIVE"}, cores=4)["OMP_WAIT_POLICY"] == "ACTIVE"


def test_importing_course_lib_first_applies_the_policy_to_a_fresh_process():
    env = {"PATH": "/usr/bin:/bin", "COURSE_THREADS": "2"}
    code = "import course_lib, os, torch; print(os.environ['OMP_WAIT_POLICY'], torch.get_num_threads())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["PASSIVE", "2"]


def test_describe_warns_when_the_kernel_was_started_without_the_policy(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    assert "not started by course_lib" not in runtime.describe()
    monkeypatch.delenv("OMP_WAIT_POLICY")
    assert "not started by course_lib" in runtime.describe() and "make lab" in runtime.describe()


def test_the_installed_kernel_spec_starts_kernels_with_the_policy(tmp_path, monkeypatch):
    folder = kernel.install(tmp_path)
    spec = json.loads((folder / "kernel.json").read_text())
    assert spec["argv"][:3] == [sys.executable, "-m", "course_lib.kernel"]
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)  # the policy must come from the launcher, not from us
    monkeypatch.setenv("COURSE_THREADS", "2")
    km = KernelManager(kernel_name="python3",
                       kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(folder.parent)]))
    km.start_kernel()
    client = km.client()
    try:
        client.start_channels()
        client.wait_for_ready(timeout=60)
        lines = []
        client.execute_interactive(PROBE, timeout=60,
                                   output_hook=lambda msg: lines.append(msg["content"].get("text", "")))
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)
    assert "".join(lines).split() == ["PASSIVE", "2"]


def test_course_lib_run_gives_its_kernels_the_policy(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setenv("COURSE_THREADS", "2")
    nb = new_notebook(cells=[new_code_cell(PROBE)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "01_probe.ipynb"
    nbformat.write(nb, path)
    [result] = run_notebooks([path], "smoke", tmp_path / "out", cell_timeout=120, progress=False)
    assert result.ok, result.error
    executed = nbformat.read(result.output, as_version=4)
    assert executed.cells[0].outputs[0]["text"].split() == ["PASSIVE", "2"]
