"""The thread policy of every process that runs the course's torch code, decided here and nowhere else.

On a laptop that is never idle (a browser, JupyterLab, a second kernel), PyTorch's OpenMP threads
spin while they wait for each other; when one of them shares its core with another program, every
parallel region waits for the slowest thread and a training epoch can take tens of times longer.
Two settings prevent that:

- ``OMP_WAIT_POLICY=PASSIVE``: waiting threads sleep instead of spinning. OpenMP reads it once, when
  torch loads, so it must be in the environment *before* the process starts: the course's kernel
  (:mod:`course_lib.kernel`), ``course-lib run``, the Makefile's test and benchmark targets set it;
- a thread count of one core fewer than the machine has (at least one), so that one core stays free
  for JupyterLab, the browser and the operating system.

``COURSE_THREADS=N`` overrides the count; an explicit ``OMP_WAIT_POLICY`` is respected.
:func:`main` prints the variables as ``NAME=value`` lines (the Makefile passes them to JupyterLab and the benchmarks).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping

THREADS_VAR = "COURSE_THREADS"
WAIT_VAR = "OMP_WAIT_POLICY"
# libraries that size their thread pools from these variables when they load
COUNT_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def cpu_cores() -> int:
    """Cores this process may run on (its CPU affinity where the system reports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no sched_getaffinity
        return os.cpu_count() or 1


def threads(environ: Mapping[str, str] = os.environ, cores: int | None = None) -> int:
    """Compute threads for torch: ``$COURSE_THREADS`` if set, else one fewer than the cores (at least 1)."""
    value = environ.get(THREADS_VAR, "").strip()
    if value:
        if not value.isdecimal() or int(value) < 1:
            raise ValueError(f"{THREADS_VAR}={value!r} is not a thread count; give a whole number of at least 1")
        return int(value)
    return max(1, (cores or cpu_cores()) - 1)


def thread_env(environ: Mapping[str, str] = os.environ, cores: int | None = None) -> dict[str, str]:
    """The variables a new process needs, before torch loads, to follow the policy."""
    n = str(threads(environ, cores))
    return {WAIT_VAR: environ.get(WAIT_VAR) or "PASSIVE", THREADS_VAR: n, **{var: n for var in COUNT_VARS}}


def apply(environ: MutableMapping[str, str] = os.environ) -> int:
    """Put the policy into this process's environment (effective for torch only if it is not loaded yet).

    If torch is already loaded, its thread count is set directly; the wait policy can then no longer
    change, and :func:`describe` says so.
    """
    values = thread_env(environ)
    environ.update(values)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(values[THREADS_VAR]))
    return int(values[THREADS_VAR])


def describe() -> str:
    """One line for a notebook's header: the threads torch uses and how they wait, with a hint when off-policy."""
    import torch

    wait = os.environ.get(WAIT_VAR, "")
    line = f"threads: {torch.get_num_threads()} of {cpu_cores()} cores, {WAIT_VAR}={wait or 'unset'}"
    if wait.upper() != "PASSIVE":
        line += (" (this kernel was not started by course_lib: on a busy machine training can be many times "
                 "slower; start JupyterLab with `make lab`)")
    return line


def main() -> int:
    """Print the policy's variables as NAME=value lines."""
    for name, value in thread_env().items():
        print(f"{name}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
