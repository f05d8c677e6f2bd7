"""``python -m benchmarks [--quick] [--out FILE] [--only NAME ...]``: run and write BENCHMARKS.md.

A benchmark never fails the build: a target that is not met is reported as such.
``--quick`` runs every benchmark once at a tiny size (used by the test suite to check
the benchmark code itself, not to measure).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import demo_floor, goodput, llm, others, state, trail, warehouse_spark
from benchmarks._common import Section, machine

FULL: dict[str, Callable[[], Section]] = {
    "import": lambda: others.import_time(),
    "llm_overhead": lambda: llm.overhead(),
    "llm_batch": lambda: llm.batch_wall(),
    "llm_storm": lambda: llm.retry_storm(),
    "llm_goodput": lambda: goodput.goodput(),
    "state": lambda: state.state(),
    "warehouse": lambda: others.warehouse(),
    "warehouse_spark": lambda: warehouse_spark.warehouse_spark(),
    "trail": lambda: trail.trail(),
    "classify": lambda: others.classify(),
    "demo": lambda: demo_floor.demo_floor(repeats=5),
}
QUICK: dict[str, Callable[[], Section]] = {
    "import": lambda: others.import_time(repeats=1),
    "llm_overhead": lambda: llm.overhead(calls=40, concurrency=8, repeats=1),
    "llm_batch": lambda: llm.batch_wall(
        prompts=40, latency_ms=5, concurrency=10, repeats=1, sequential_sample=5
    ),
    "llm_storm": lambda: llm.retry_storm(
        prompts=40, latency_ms=5, concurrency=10, retry_after_s=0.01
    ),
    "llm_goodput": lambda: goodput.goodput(prompts=60, rps=60, latency_ms=50, concurrency=16),
    "state": lambda: state.state(round_trips=20, repeats=1),
    "warehouse": lambda: others.warehouse(rows=5000, pandas_rows=1000, repeats=1),
    "warehouse_spark": lambda: warehouse_spark.warehouse_spark(rows=2000, repeats=1),
    "trail": lambda: trail.trail(records=50, repeats=1),
    "classify": lambda: others.classify(items=30),
    "demo": lambda: demo_floor.demo_floor(rows=2000, repeats=1),
}


def _fmt(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def render(sections: list[Section], elapsed: float) -> str:
    info = machine()
    lines = [
        "# Benchmarks",
        "",
        f"Written by `nox -s bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC in {elapsed:.0f} s.",
        f"Machine: {info['cpus']} CPUs ({info['cpu']}), Python {info['python']}, {info['platform']}.",
        "Each figure is the median of the repeats shown; ratios compare figures from this one run",
        "(the machine is shared and noisy, so absolute numbers move between runs; ratios less so).",
        "",
    ]
    for section in sections:
        lines += [
            f"## {section.title}",
            "",
            "| measurement | median | unit | runs | note |",
            "| --- | ---: | --- | ---: | --- |",
        ]
        for fig in section.figures:
            lines.append(
                f"| {fig.name} | {_fmt(fig.median)} | {fig.unit} | {len(fig.samples)} | {fig.note} |"
            )
        if section.ratios:
            lines += ["", "| ratio | value | target |", "| --- | ---: | --- |"]
            for name, value, target in section.ratios:
                lines.append(f"| {name} | {value:.2f} | {target} |")
        for note in section.notes:
            lines += ["", f"Note: {note}"]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run: checks the code")
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument(
        "--only",
        nargs="*",
        choices=list(FULL),
        metavar="NAME",
        help=f"run only these benchmarks: {', '.join(FULL)}",
    )
    args = parser.parse_args(argv)
    table = QUICK if args.quick else FULL
    names = args.only or list(table)
    started = time.perf_counter()
    sections: list[Section] = []
    for name in names:
        t0 = time.perf_counter()
        print(f"[bench] {name}...", file=sys.stderr, flush=True)
        try:
            sections.append(table[name]())
        except Exception as exc:  # reported in the file; a benchmark never fails the build
            traceback.print_exc()
            failed = Section(f"{name}: failed")
            failed.notes.append(f"{type(exc).__name__}: {exc}")
            sections.append(failed)
        print(
            f"[bench] {name} done in {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True
        )
    args.out.write_text(render(sections, time.perf_counter() - started))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
