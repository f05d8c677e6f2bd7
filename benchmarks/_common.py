"""Shared helpers: medians over repeats, machine facts, a loopback server process."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Figure:
    """One measured quantity: its repeated samples and how to show it."""

    name: str
    samples: list[float]
    unit: str
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


@dataclass
class Section:
    title: str
    figures: list[Figure] = field(default_factory=list)
    ratios: list[tuple[str, float, str]] = field(default_factory=list)  # (name, value, target)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, samples: list[float], unit: str, note: str = "") -> Figure:
        fig = Figure(name, samples, unit, note)
        self.figures.append(fig)
        return fig

    def ratio(self, name: str, value: float, target: str = "") -> None:
        self.ratios.append((name, value, target))


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def repeat(fn: Callable[[], float], times: int) -> list[float]:
    return [fn() for _ in range(times)]


@contextmanager
def server_process(*args: str) -> Iterator[str]:
    """``python -m audit_core.testing`` in its own process; yields its URL."""
    command = [sys.executable, "-m", "audit_core.testing", *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("the loopback server did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def cpu_and_wall(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(process CPU seconds, wall seconds, result) of one call."""
    c0, w0 = time.process_time(), time.perf_counter()
    result = fn()
    return time.process_time() - c0, time.perf_counter() - w0, result
