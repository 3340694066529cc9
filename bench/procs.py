"""What processes cost: resident memory and CPU time from /proc, and child processes timed with wait4.

Linux only, like the rest of the benchmark (wrk, pgbench, /proc).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _status_kb(pid: int, key: str) -> int:
    """A `kB` line of /proc/PID/status (VmRSS, VmHWM); 0 when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def descendants(pid: int) -> list[int]:
    """The process and all its descendants (via /proc/PID/task/TID/children)."""
    found = [pid]
    index = 0
    while index < len(found):
        current = found[index]
        index += 1
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                with contextlib.suppress(OSError):
                    found.extend(int(child) for child in (task / "children").read_text().split())
    return found


def rss_kb(pid: int) -> int:
    """Resident memory of the process and its descendants, in kB."""
    return sum(_status_kb(p, "VmRSS") for p in descendants(pid))


def hwm_kb(pid: int) -> int:
    """The process's own peak resident memory so far (VmHWM), in kB."""
    return _status_kb(pid, "VmHWM")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of the process and its descendants so far."""
    total = 0
    for p in descendants(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLOCK_TICKS


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # steal included, guest already counted in user
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


@dataclass
class Window:
    """CPU and memory of one process over a stretch of time (one workload)."""

    started: float
    cpu_at_start: float
    machine_at_start: tuple[float, float]
    peak_rss_kb: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    machine_busy_percent: float = 0.0

    @property
    def cpu_percent(self) -> float:
        """Percent of one core (200 means two cores busy)."""
        return 100.0 * self.cpu / self.wall if self.wall else 0.0


@dataclass
class Sampler:
    """Samples a process's resident memory (with its children) every `interval` seconds."""

    pid: int
    interval: float = 0.1
    peak_rss_kb: int = 0
    samples: int = 0
    windows: list[Window] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def sample(self) -> int:
        value = rss_kb(self.pid)
        self.samples += 1
        self.peak_rss_kb = max(self.peak_rss_kb, value)
        for window in self.windows:
            window.peak_rss_kb = max(window.peak_rss_kb, value)
        return value

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def open_window(self) -> Window:
        window = Window(time.perf_counter(), cpu_seconds(self.pid), machine_cpu())
        self.windows.append(window)
        self.sample()
        return window

    def close_window(self, window: Window) -> Window:
        self.sample()
        self.windows.remove(window)
        window.wall = time.perf_counter() - window.started
        window.cpu = cpu_seconds(self.pid) - window.cpu_at_start
        busy, total = machine_cpu()
        elapsed = total - window.machine_at_start[1]
        if elapsed > 0:
            window.machine_busy_percent = 100.0 * (busy - window.machine_at_start[0]) / elapsed
        return window


@dataclass(frozen=True)
class Measured:
    """A finished child process: its output, wall time, CPU time and peak memory (from wait4)."""

    returncode: int
    stdout: str
    stderr: str
    wall: float
    cpu: float
    max_rss_kb: int

    @property
    def cpu_percent(self) -> float:
        return 100.0 * self.cpu / self.wall if self.wall else 0.0


def run_measured(command: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | None = None) -> Measured:
    """Run a command to completion, measuring it with wait4 (blocking: call it in a thread)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=dict(env) if env else None, cwd=cwd)
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            process.kill()
            process.wait()
            raise
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Measured(
            returncode=process.returncode,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
            wall=wall,
            cpu=usage.ru_utime + usage.ru_stime,
            max_rss_kb=usage.ru_maxrss,
        )
