"""The workloads of issue 4 and their targets.

  a  credits spread over every volunteer of every community (coordinators' tokens)
  b  credits all into one community: its issuance account is on every transaction
  c  gifts among the members of one community, each sending with its own token
  d  balance reads, GET /v1/accounts/{id}, over every volunteer (coordinators' tokens)
  e  statement pages of one account with a long history: the first page, and a page
     `depth` pages deep (found by following next_cursor from the first)
  f  `timebank verify` over the whole ledger, in transactions verified per second
  g  the monthly report of one community with a long history (1,000,000 entries over 12 months)
  h  service request flows: ask (own hours) -> assign -> check-in -> report -> confirm, a
     coordinator's token, many flows at once; throughput counts the steps (each a write)
  i  activity batches: POST /v1/credit-batches crediting `--batch-size` volunteers at once
  j  credits on a new database of 1,000 volunteers, never analyzed and after VACUUM ANALYZE
     (bench/fresh.py): plans must not depend on statistics taken while the ledger was empty
  k  the public log's inclusion proofs, GET /v1/transactions/{id}/proof of random transactions of
     a sealed log (--proof-transactions, 1,000,000), by an auditor of every community; and
     k.consistency, public consistency proofs from a random older size to the signed one
     (bench/proofs.py)
  ceiling  bench/ceiling.py's one INSERT per request under the same server stack: the reference
     for every HTTP result's `x ceiling`, as pgbench is for `x pgbench`

Every workload is judged with no errors allowed; the target itself is the issue's.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from bench.load import LoadResult, run_wrk
from bench.procs import Sampler, Window, run_measured

TITLES = {
    "a": "credits, spread over all volunteers",
    "b": "credits, one community (hot issuance)",
    "c": "gifts among members of one community",
    "d": "balance reads GET /v1/accounts/{id}",
    "e.first": "statement, first page",
    "e.deep": "statement, page N deep",
    "f": "timebank verify",
    "g": "monthly report, one community",
    "h": "service request flows, 5 steps each",
    "i": "activity batches (credit-batches)",
    "j.unanalyzed": "credits, new database, never analyzed",
    "j.analyzed": "credits, new database, after VACUUM ANALYZE",
    "j.unanalyzed.after": "credits, new database, never analyzed (after j.analyzed)",
    "k": "inclusion proofs GET /v1/transactions/{id}/proof",
    "k.consistency": "consistency proofs GET /v1/log/consistency",
    "ceiling": "ceiling: Litestar+asyncpg, one INSERT",
}
RSS_LIMIT_MB = 200.0


@dataclass
class Result:
    id: str
    title: str
    throughput: float | None
    unit: str
    latency_ms: dict[str, float] | None
    errors: int
    server_peak_rss_mb: float
    server_cpu_percent: float
    loadgen_cpu_percent: float | None
    machine_cpu_percent: float
    ratio_to_baseline: float | None = None
    target: str = ""
    passed: bool | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    # The server stack it ran under (bench/stacks.py), and its throughput over the ceiling's there.
    server: str = ""
    workers: int = 0
    ratio_to_ceiling: float | None = None

    @property
    def stack(self) -> str:
        return f"{self.server} x{self.workers}" if self.server else ""

    def as_json(self) -> dict[str, Any]:
        latency = self.latency_ms or {}
        return {
            "id": self.id,
            "server": self.server,
            "workers": self.workers,
            "title": self.title,
            "throughput": self.throughput,
            "unit": self.unit,
            "p50_ms": latency.get("p50"),
            "p99_ms": latency.get("p99"),
            "p999_ms": latency.get("p999"),
            "errors": self.errors,
            "server_peak_rss_mb": self.server_peak_rss_mb,
            "server_cpu_percent": self.server_cpu_percent,
            "loadgen_cpu_percent": self.loadgen_cpu_percent,
            "machine_cpu_percent": self.machine_cpu_percent,
            "ratio_to_baseline": self.ratio_to_baseline,
            "ratio_to_ceiling": self.ratio_to_ceiling,
            "target": self.target,
            "pass": self.passed,
            "detail": self.detail,
        }


def _mb(kb: int) -> float:
    return round(kb / 1024.0, 1)


@dataclass(frozen=True)
class HttpLoad:
    """How hard and how long to drive the server."""

    base_url: str
    connections: int
    threads: int
    duration: int
    warmup: int
    run_id: str
    status_codes: bool


async def http_workload(
    workload: str, mode: str, rows: Sequence[tuple[str, str]], load: HttpLoad, sampler: Sampler, **detail: Any
) -> Result:
    """Warm up (not measured), then measure one wrk run while sampling the server."""

    async def drive(duration: int, run_id: str) -> LoadResult:
        return await run_wrk(
            load.base_url, mode, rows, connections=load.connections, threads=load.threads, duration=duration,
            run_id=run_id, status_codes=load.status_codes,
        )  # fmt: skip

    if load.warmup > 0:
        await drive(load.warmup, f"{load.run_id}-{workload}-w")
    window = sampler.open_window()
    measured = await drive(load.duration, f"{load.run_id}-{workload}")
    sampler.close_window(window)
    if mode == "flow":
        detail |= {"flows": measured.flows, "flows_per_second": round(measured.flows / max(measured.seconds, 1e-9), 1)}
    if mode == "batch":
        detail |= {"credits_per_second": round(measured.throughput * detail.get("batch_size", 0), 1)}
    return _http_result(workload, measured, window, detail)


def _http_result(workload: str, measured: LoadResult, window: Window, detail: dict[str, Any]) -> Result:
    return Result(
        id=workload,
        title=TITLES[workload],
        throughput=round(measured.throughput, 1),
        unit="req/s",
        latency_ms={k: round(measured.latency_ms[k], 2) for k in ("p50", "p99", "p999")},
        errors=measured.errors,
        server_peak_rss_mb=_mb(window.peak_rss_kb),
        server_cpu_percent=round(window.cpu_percent, 1),
        loadgen_cpu_percent=round(measured.loadgen_cpu_percent, 1),
        machine_cpu_percent=round(window.machine_busy_percent, 1),
        detail={
            "requests": measured.requests,
            "seconds": round(measured.seconds, 2),
            "error_kinds": measured.error_kinds,
            "statuses": measured.statuses,
            "latency_ms": {k: round(v, 2) for k, v in measured.latency_ms.items()},
        }
        | detail,
    )


async def deep_cursor(base_url: str, path: str, token: str, depth: int) -> tuple[str, int]:
    """Follow next_cursor `depth` times from the first page; returns (that page's URL path, depth reached)."""
    url = path
    reached = 0
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"}) as client:
        while reached < depth:
            response = await client.get(url, timeout=30)
            response.raise_for_status()
            cursor = response.json()["next_cursor"]
            if cursor is None:
                break
            url = f"{path}&cursor={quote(cursor, safe='')}"
            reached += 1
    return url, reached


def cli_environment(owner_url: str, settings: Mapping[str, str]) -> dict[str, str]:
    """The environment of a `timebank` command run as an operator would: this database, the servers' settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
    return env | {"TIMEBANK_DATABASE_URL": owner_url, "TIMEBANK_LOG_LEVEL": "warning"} | dict(settings)


async def verify_workload(owner_url: str, transactions: int, sampler: Sampler, settings: dict[str, str]) -> Result:
    """Time `python -m timebank.cli verify` over the ledger, as an operator would run it (same settings as serve)."""
    env = cli_environment(owner_url, settings)
    window = sampler.open_window()
    measured = await asyncio.to_thread(run_measured, [sys.executable, "-m", "timebank.cli", "verify"], env)
    sampler.close_window(window)
    verified = measured.returncode == 0
    return Result(
        id="f",
        title=TITLES["f"],
        # Transactions verified per second; none when verify did not finish (the output says why).
        throughput=round(transactions / measured.wall, 1) if verified and measured.wall else None,
        unit="tx/s",
        latency_ms=None,
        errors=0 if verified else 1,
        server_peak_rss_mb=_mb(window.peak_rss_kb),
        server_cpu_percent=round(window.cpu_percent, 1),
        loadgen_cpu_percent=None,
        machine_cpu_percent=round(window.machine_busy_percent, 1),
        detail={
            "transactions": transactions,
            "seconds": round(measured.wall, 2),
            "exit_code": measured.returncode,
            "verify_cpu_percent": round(measured.cpu_percent, 1),
            "verify_peak_rss_mb": _mb(measured.max_rss_kb),
            "output": (measured.stdout + measured.stderr)[-3000:],
        },
    )


def judge(results: dict[str, Result], baseline_tps: float) -> None:
    """Fill in each result's ratio to pgbench, target and pass (a target also needs zero errors)."""
    for result in results.values():
        if result.unit == "req/s" and result.throughput is not None and baseline_tps > 0:
            result.ratio_to_baseline = round(result.throughput / baseline_tps, 3)

    def check(result: Result, target: str, met: bool | None) -> None:
        result.target = target
        result.passed = None if met is None else (met and result.errors == 0)

    ratio = {k: r.ratio_to_baseline for k, r in results.items()}
    if "a" in results:
        check(results["a"], ">= 1.5x pgbench", ratio["a"] is not None and ratio["a"] >= 1.5)
    _check_against(results, "b", "a", 0.9, check)
    if "c" in results:
        check(results["c"], ">= 1.0x pgbench", ratio["c"] is not None and ratio["c"] >= 1.0)
    if "d" in results:
        d = results["d"]
        p99 = (d.latency_ms or {}).get("p99", float("inf"))
        check(d, ">= 3x pgbench, p99 < 20 ms", ratio["d"] is not None and ratio["d"] >= 3.0 and p99 < 20.0)
    # e: issue 4's statement pages; k: issue 12's proof target, at 1,000,000 leaves in a full run.
    for key, limit_ms in {"e.first": 10.0, "e.deep": 10.0, "k": 20.0, "k.consistency": 20.0}.items():
        if key in results:
            p99 = (results[key].latency_ms or {}).get("p99", float("inf"))
            check(results[key], f"p99 < {limit_ms:.0f} ms", p99 < limit_ms)
    if "f" in results:
        check(results["f"], ">= 100,000 tx/s", (results["f"].throughput or 0.0) >= 100_000)
    if "g" in results:
        p99 = (results["g"].latency_ms or {}).get("p99", float("inf"))
        check(results["g"], "p99 < 1 s", p99 < 1000.0)
    # Issue 13: service request flows and activity batches are measured so that a slowdown is seen
    # the day it lands; no ratio is promised yet, only that every request succeeds.
    # The references are judged on their errors only, like h and i.
    references = {
        "j.unanalyzed": "reference for j.analyzed",
        "j.unanalyzed.after": "reference for j.analyzed",
        "ceiling": "reference for x ceiling",
    }
    for key, target in ({"h": "no errors (ratio recorded)", "i": "no errors (ratio recorded)"} | references).items():
        if key in results:
            check(results[key], target, True)
    _check_analyzed(results, check)


def _check_analyzed(results: dict[str, Result], check: Callable[[Result, str, bool | None], None]) -> None:
    """j.analyzed against the mean of the unanalyzed runs on either side of it (or the one before, alone)."""
    if "j.analyzed" not in results:
        return
    around = [results[k].throughput for k in ("j.unanalyzed", "j.unanalyzed.after") if k in results]
    if not around or any(t is None for t in around):
        check(results["j.analyzed"], ">= 0.9x j.unanalyzed", None)
        return
    reference = sum(t or 0.0 for t in around) / len(around)
    target = ">= 0.9x j.unanalyzed" if len(around) == 1 else ">= 0.9x mean of j.unanalyzed and j.unanalyzed.after"
    check(results["j.analyzed"], target, (results["j.analyzed"].throughput or 0.0) >= 0.9 * reference)


def relate_to_ceiling(results: dict[str, Result], ceiling: Result | None) -> None:
    """Each HTTP result's throughput over the ceiling's, measured under the same server and workers."""
    if ceiling is None or not ceiling.throughput:
        return
    for result in results.values():
        if result.unit == "req/s" and result.throughput is not None:
            result.ratio_to_ceiling = round(result.throughput / ceiling.throughput, 3)


def _check_against(
    results: dict[str, Result],
    key: str,
    reference: str,
    fraction: float,
    check: Callable[[Result, str, bool | None], None],
) -> None:
    """`key` must reach `fraction` of `reference`'s throughput, measured in the same run (unjudged without it)."""
    if key not in results:
        return
    other = results.get(reference)
    tps = results[key].throughput or 0.0
    met = None if other is None or other.throughput is None else tps >= fraction * other.throughput
    check(results[key], f">= {fraction}x {reference}", met)
