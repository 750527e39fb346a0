"""The ``course-lib`` command: run the notebooks, write the student edition, manage the data cache, build the report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course_lib.profiles import PROFILES, active_profile


def _cmd_run(args: argparse.Namespace) -> int:
    from course_lib.runner import BUILD_DIR, build_report, find_notebooks, run_notebooks
    paths = find_notebooks(args.notebooks, Path(args.notebooks_dir)) if args.notebooks_dir else find_notebooks(args.notebooks)
    out = Path(args.out) if args.out else BUILD_DIR / "executed" / args.profile
    print(f"Running {len(paths)} notebook(s) in the '{args.profile}' profile"
          f"{' (offline)' if args.offline else ''}; executed copies go to {out}")
    results = run_notebooks(paths, args.profile, out, cell_timeout=args.cell_timeout, offline=args.offline)
    md, html = build_report(out, Path(args.report) if args.report else None)
    for r in results:
        memory = f"{r.peak_mb:6.0f} MB" if r.peak_mb is not None else "      -  "
        print(f"  {'ok    ' if r.ok else 'FAILED'} {r.name:32s} {r.seconds / 60:5.1f} min {memory}  {r.error}")
    print(f"Report: {md}\n        {html}")
    return 0 if all(r.ok for r in results) else 1


def _cmd_report(args: argparse.Namespace) -> int:
    from course_lib.runner import build_report
    md, html = build_report(Path(args.dir) if args.dir else None, Path(args.report) if args.report else None)
    print(f"Report: {md}\n        {html}")
    return 0


def _cmd_student(args: argparse.Namespace) -> int:
    import nbformat

    from course_lib.editions import exercise_cells, write_student_edition
    from course_lib.runner import BUILD_DIR, find_notebooks
    folder = Path(args.notebooks_dir) if args.notebooks_dir else None
    paths = find_notebooks(args.notebooks or None, *([folder] if folder else []))
    out = Path(args.out) if args.out else BUILD_DIR / "student"
    for path in write_student_edition(paths, out):
        n = len(exercise_cells(nbformat.read(path, as_version=4))["solution"])
        print(f"  {path.name:45s} {n} exercise(s)")
    print(f"Student edition: {out} (solutions and hidden tests removed with nbgrader's preprocessors)")
    return 0


def _cmd_data_fetch(args: argparse.Namespace) -> int:
    from course_lib import data
    results = data.fetch(args.names or None)
    for name, outcome in results.items():
        first, *rest = outcome.splitlines() or [""]
        print(f"  {name:15s} {first}")
        for line in rest:  # the whole cause, indented under its source
            print(f"  {'':15s}   {line.strip()}")
    print(f"Cache folder: {data.cache_dir()}  (set COURSE_DATA to use another one)")
    return 0 if all(v == "ok" for v in results.values()) else 1


def _cmd_data_list(args: argparse.Namespace) -> int:
    from course_lib import data
    print(f"Cache folder: {data.cache_dir()}  (each source is checked by its own loader, offline)")
    for name in [*data.SOURCES, "course-digits"]:
        row = data.status([name]).iloc[0]
        print(f"  {row['name']:20s} {row['in cache']:10s} {row['size (MB)']:7.1f} MB  {row['folder']}")
        for line in str(row["detail"]).splitlines():
            if row["in cache"] != "missing":
                print(f"  {'':20s}   {line.strip()}")
        if row["in cache"] in ("missing", "partial", "unusable"):
            print(f"  {'':20s}   used instead: {row['used when missing']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``course-lib``."""
    parser = argparse.ArgumentParser(prog="course-lib", description="Run and manage the course notebooks.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute notebooks headless and write a results report")
    run.add_argument("notebooks", nargs="*", help="notebook numbers or names (default: all)")
    run.add_argument("--profile", choices=PROFILES, default=None, help="scale profile (default: $COURSE_PROFILE or class)")
    run.add_argument("--offline", action="store_true", help="never try the network; use cache and fallbacks")
    run.add_argument("--out", help="folder for executed copies (default: build/executed/<profile>)")
    run.add_argument("--report", help="report path without suffix (default: build/report)")
    run.add_argument("--notebooks-dir", help="folder holding the notebooks (default: the repository's notebooks/)")
    run.add_argument("--cell-timeout", type=int, default=3600, help="seconds one cell may take (default 3600)")
    run.set_defaults(func=_cmd_run)

    report = sub.add_parser("report", help="rebuild the report from executed notebooks")
    report.add_argument("--dir", help="folder of executed notebooks (default: build/executed/class)")
    report.add_argument("--report", help="report path without suffix (default: build/report)")
    report.set_defaults(func=_cmd_report)

    student = sub.add_parser("student", help="write the student edition (solutions and hidden tests removed)")
    student.add_argument("notebooks", nargs="*", help="notebook numbers or names (default: all)")
    student.add_argument("--out", help="folder for the student edition (default: build/student)")
    student.add_argument("--notebooks-dir", help="folder holding the notebooks (default: the repository's notebooks/)")
    student.set_defaults(func=_cmd_student)

    data = sub.add_parser("data", help="pre-load or inspect the data cache")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    fetch = data_sub.add_parser("fetch", help="download data sets into the cache (all if none named)")
    fetch.add_argument("names", nargs="*")
    fetch.set_defaults(func=_cmd_data_fetch)
    data_sub.add_parser("list", help="what is cached, real or fallback, and sizes").set_defaults(func=_cmd_data_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``course-lib`` command."""
    args = build_parser().parse_args(argv)
    if getattr(args, "profile", "unset") is None:
        args.profile = active_profile()
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"course-lib: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
