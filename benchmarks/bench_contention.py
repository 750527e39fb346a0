"""Benchmark: one LeNet-5 training epoch, idle and with one core kept busy, under three thread policies.

Each measurement runs in a fresh process, because OpenMP reads its wait policy only when torch loads:
- ``default``: what plain PyTorch does (one thread per core, OpenMP's spinning wait);
- ``passive, all cores``: the same thread count, but waiting threads sleep (``OMP_WAIT_POLICY=PASSIVE``);
- ``course_lib``: the policy of ``course_lib.runtime`` (passive, one core left free).
"Busy" means a second process, started by this benchmark, spinning on one core for the whole epoch.
Printed: seconds per epoch (median of the repeats), and for each policy busy / idle, and how much
slower the default policy is than course_lib's when the machine is busy.

    python benchmarks/bench_contention.py [--images 4000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time

WAIT_VARS = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "COURSE_THREADS")


def spin(stop: multiprocessing.Event) -> None:
    """Keep one core busy until told to stop (the load a browser or a second kernel puts on a laptop)."""
    while not stop.is_set():
        for _ in range(100_000):
            pass


def worker(images: int, batch_size: int, threads: int) -> None:
    """Train LeNet-5 for one warm-up epoch and one timed epoch; print the timed seconds as JSON."""
    import torch  # first: OpenMP takes its wait policy from the environment this process started with

    from course_lib.data import load_mnist  # importing course_lib applies its policy's thread count ...
    from course_lib.models import LeNet5

    torch.set_num_threads(threads)  # ... which each measured policy sets for itself here

    train, _ = load_mnist(quiet=True)
    x, y = train.x[:images], train.y[:images]
    torch.manual_seed(0)
    model = LeNet5()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def epoch() -> float:
        start = time.perf_counter()
        for i in range(0, len(x), batch_size):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[i:i + batch_size]), y[i:i + batch_size]).backward()
            opt.step()
        return time.perf_counter() - start

    epoch()  # warm-up: first-call allocations and kernel selection
    print(json.dumps({"seconds": epoch(), "threads": torch.get_num_threads()}))


def policy_env(name: str) -> tuple[dict[str, str], int]:
    """The environment and thread count of one policy (from this process's environment minus the thread variables)."""
    from course_lib.runtime import cpu_cores, thread_env

    env = {k: v for k, v in os.environ.items() if k not in WAIT_VARS}
    if name == "default":  # what torch picks by itself: one thread per core, spinning waits
        return env, cpu_cores()
    if name == "passive, all cores":
        return {**env, "OMP_WAIT_POLICY": "PASSIVE"}, cpu_cores()
    policy = thread_env(env)
    return {**env, **policy}, int(policy["COURSE_THREADS"])


def measure(policy: str, busy: bool, images: int, batch_size: int) -> dict:
    """One epoch in a fresh process under ``policy``, with or without a spinning neighbour."""
    stop = multiprocessing.Event()
    load = multiprocessing.Process(target=spin, args=(stop,), daemon=True) if busy else None
    if load:
        load.start()
        time.sleep(0.5)  # let it reach full speed
    env, threads = policy_env(policy)
    try:
        out = subprocess.run([sys.executable, __file__, "--worker", "--images", str(images),
                              "--batch-size", str(batch_size), "--threads", str(threads)],
                             env=env, capture_output=True, text=True, check=True, timeout=1800)
    finally:
        if load:
            stop.set()
            load.join()
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.images, args.batch_size, args.threads)
        return

    from course_lib.runtime import cpu_cores
    policies = ("default", "passive, all cores", "course_lib")
    print(f"{cpu_cores()} cores; one LeNet-5 epoch on {args.images} MNIST images, batch {args.batch_size}; "
          f"median of {args.repeats} runs, each in a fresh process")
    seconds: dict[tuple[str, bool], list[float]] = {}
    threads: dict[str, int] = {}
    for _ in range(args.repeats):  # interleaved, so a drift in machine load touches every cell alike
        for policy in policies:
            for busy in (False, True):
                result = measure(policy, busy, args.images, args.batch_size)
                seconds.setdefault((policy, busy), []).append(result["seconds"])
                threads[policy] = result["threads"]
    med = {k: statistics.median(v) for k, v in seconds.items()}
    print(f"\n{'policy':20s} {'threads':>7s} {'idle s':>8s} {'busy s':>8s} {'busy / idle':>12s}")
    for policy in policies:
        idle, busy = med[policy, False], med[policy, True]
        print(f"{policy:20s} {threads[policy]:7d} {idle:8.2f} {busy:8.2f} {busy / idle:11.1f}x")
    print(f"\nbusy machine: default / course_lib = {med['default', True] / med['course_lib', True]:.1f}x; "
          f"idle machine: default / course_lib = {med['default', False] / med['course_lib', False]:.2f}x")


if __name__ == "__main__":
    main()
