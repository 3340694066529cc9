"""The yardstick: pgbench's TPC-B-like script, prepared statements, at the benchmark's client count.

`pgbench -i -s SCALE` in a scratch database, then `pgbench -M prepared -c N -j THREADS -T D -l`;
tps from pgbench's summary, latency percentiles from its per-transaction log.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import postgres
from bench.procs import Measured, run_measured
from bench.stats import percentiles


@dataclass(frozen=True)
class Baseline:
    binary: str
    binary_major: int
    scale: int
    clients: int
    threads: int
    duration: int
    tps: float
    transactions: int
    failed: int
    latency_ms: dict[str, float]
    init_seconds: float
    cpu_percent: float


def _number(pattern: str, text: str) -> float | None:
    found = re.search(pattern, text)
    return float(found.group(1)) if found else None


def _log_latencies_ms(directory: Path) -> list[float]:
    """Per-transaction latencies from pgbench's -l logs: `client tx latency_us script epoch us ...`."""
    values = []
    for log in directory.glob("pgbench_log*"):
        for line in log.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[2].isdigit():
                values.append(int(fields[2]) / 1000.0)
    return values


def _check(result: Measured, what: str) -> None:
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {result.returncode}):\n{result.stderr[-2000:]}")


async def run_baseline(server_url: str, major: int, clients: int, threads: int, duration: int, scale: int) -> Baseline:
    binary, binary_major = postgres.find_pgbench(major)
    name, url = await postgres.scratch_database(server_url, "timebank_bench_pgbench")
    try:
        init = await asyncio.to_thread(run_measured, [binary, "-i", "-q", "-s", str(scale), url])
        _check(init, "pgbench -i")
        with tempfile.TemporaryDirectory(prefix="timebank-pgbench-") as directory:
            command = [
                binary, "-M", "prepared", "-c", str(clients), "-j", str(threads), "-T", str(duration),
                "-l", "--log-prefix", str(Path(directory) / "pgbench_log"), url,
            ]  # fmt: skip
            result = await asyncio.to_thread(run_measured, command, None, directory)
            _check(result, "pgbench")
            latencies = _log_latencies_ms(Path(directory))
    finally:
        await postgres.drop_database(server_url, name)
    tps = _number(r"tps = ([\d.]+)", result.stdout)
    if tps is None:
        raise RuntimeError(f"no tps in pgbench's output:\n{result.stdout}")
    return Baseline(
        binary=binary,
        binary_major=binary_major,
        scale=scale,
        clients=clients,
        threads=threads,
        duration=duration,
        tps=tps,
        transactions=int(_number(r"number of transactions actually processed: (\d+)", result.stdout) or 0),
        failed=int(_number(r"number of failed transactions: (\d+)", result.stdout) or 0),
        latency_ms=percentiles(latencies) | {"mean": _number(r"latency average = ([\d.]+) ms", result.stdout) or 0.0},
        init_seconds=init.wall,
        cpu_percent=result.cpu_percent,
    )
