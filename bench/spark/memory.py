"""Peak resident memory of the benchmark's processes, sampled from /proc in a thread.

`getrusage(RUSAGE_SELF).ru_maxrss` is not the driver's own peak when the driver was started by
a larger process: Linux keeps a process's high-water RSS across `execve`, and Python starts a
subprocess by `vfork` + `exec`, so a child's `ru_maxrss` starts at its parent's peak. The bench
arm of 2026-12-07 read 3,950 MiB that way, which was its parent's peak after stacking the 10M-row
source with DuckDB. Sampling `VmRSS` of the process itself measures its own memory; Spark's JVM
and its Python workers (the JVM's children) are sampled apart.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Peaks:
    """Peak MiB seen: the driver's Python process, the JVM, and Spark's Python workers (the sum
    of their proportional set sizes, so that pages shared by forked workers count once)."""

    driver: float = 0.0
    jvm: float = 0.0
    workers: float = 0.0
    worker_processes: int = 0


class Sampler(threading.Thread):
    """Samples every `interval` seconds until `stop()`; `peaks` holds the maxima."""

    def __init__(self, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peaks = Peaks()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.interval):
            self.sample()

    def stop(self) -> Peaks:
        self._done.set()
        self.join()
        self.sample()
        return self.peaks

    def sample(self) -> None:
        me = os.getpid()
        peaks = self.peaks
        peaks.driver = max(peaks.driver, _kib(me, "status", "VmRSS") / 1024)
        children = _children()
        jvms = [pid for pid in children.get(me, []) if _name(pid) == "java"]
        peaks.jvm = max(peaks.jvm, sum(_kib(pid, "status", "VmRSS") for pid in jvms) / 1024)
        workers = [pid for pid in _descendants(jvms, children) if _name(pid).startswith("python")]
        pss = sum(_kib(pid, "smaps_rollup", "Pss") for pid in workers) / 1024
        peaks.workers = max(peaks.workers, pss)
        peaks.worker_processes = max(peaks.worker_processes, len(workers))


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return out


def _descendants(roots: list[int], children: dict[int, list[int]]) -> list[int]:
    found, todo = [], list(roots)
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _kib(pid: int, file: str, field: str) -> float:
    """A `field: N kB` line of /proc/<pid>/<file>; 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0
