"""The load generator: wrk with bench/wrk/workload.lua, its own CPU use measured with wait4.

wrk is an event-loop C program: on a 2-core machine shared with the server and PostgreSQL it takes
far less CPU per request than any Python client would. Its CPU is reported with every result so
that a reader can see how much of the machine the measuring took.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from bench.procs import Measured, run_measured

SCRIPT = Path(__file__).resolve().parent / "wrk" / "workload.lua"
MARKER = "BENCH-JSON "


class WrkErrors(msgspec.Struct):
    connect: int
    read: int
    write: int
    status: int  # responses with a status above 399
    timeout: int


class WrkLatency(msgspec.Struct):
    min: float
    mean: float
    max: float
    p50: float
    p90: float
    p99: float
    p999: float


class WrkSummary(msgspec.Struct):
    """What workload.lua's done() prints; latencies in microseconds."""

    requests: int  # responses received, of any status
    duration_us: int
    bytes: int
    errors: WrkErrors
    latency_us: WrkLatency
    statuses: dict[str, int]
    # MODE=flow: service request flows completed (ask to confirm).
    flows: int = 0


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    errors: int
    error_kinds: dict[str, int]
    statuses: dict[str, int]
    latency_ms: dict[str, float]
    loadgen_cpu_percent: float
    flows: int = 0

    @property
    def throughput(self) -> float:
        """Successful (2xx/3xx) responses per second."""
        ok = self.requests - self.error_kinds.get("status", 0)
        return ok / self.seconds if self.seconds else 0.0


def find_wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    return found


def parse(stdout: str) -> WrkSummary:
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            return msgspec.json.decode(line[len(MARKER) :], type=WrkSummary)
    raise RuntimeError(f"wrk printed no {MARKER.strip()} line:\n{stdout[-2000:]}")


def _run(command: list[str], env: dict[str, str], rows: Sequence[tuple[str, str]]) -> Measured:
    """Write the rows where the script reads them (DATA), run wrk (blocking), remove the file."""
    with tempfile.NamedTemporaryFile("w", prefix="timebank-bench-", suffix=".txt", delete=False) as data:
        data.writelines(f"{first} {token}\n" for first, token in rows)
    try:
        return run_measured(command, os.environ | env | {"DATA": data.name})
    finally:
        Path(data.name).unlink(missing_ok=True)


async def run_wrk(
    base_url: str,
    mode: str,
    rows: Sequence[tuple[str, str]],
    *,
    connections: int,
    threads: int,
    duration: int,
    run_id: str,
    status_codes: bool = False,
) -> LoadResult:
    """Drive `base_url` for `duration` seconds; rows are (member id or path, token) per MODE."""
    command = [
        find_wrk(), f"-t{threads}", f"-c{max(connections, threads)}", f"-d{duration}s", "--timeout", "10s",
        "-s", str(SCRIPT), base_url,
    ]  # fmt: skip
    env = {"MODE": mode, "RUN": run_id, "STATUS_CODES": "1" if status_codes else "0"}
    result = await asyncio.to_thread(_run, command, env, rows)
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed (exit {result.returncode}):\n{result.stderr[-2000:]}{result.stdout[-2000:]}")
    summary = parse(result.stdout)
    error_kinds = msgspec.structs.asdict(summary.errors)
    return LoadResult(
        requests=summary.requests,
        seconds=summary.duration_us / 1e6,
        errors=sum(error_kinds.values()),
        error_kinds={k: v for k, v in error_kinds.items() if v},
        statuses=summary.statuses,
        flows=summary.flows,
        latency_ms={k: v / 1000.0 for k, v in msgspec.structs.asdict(summary.latency_us).items()},
        loadgen_cpu_percent=result.cpu_percent,
    )
