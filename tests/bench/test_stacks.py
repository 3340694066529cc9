"""Server stacks of the bench (bench/stacks.py), the choice of the best one (bench/report.py), and the
ASGI factory's rule that only one of a server's workers runs the background jobs (timebank/asgi.py)."""

from __future__ import annotations

import os

import httpx
import pytest

from bench.report import best_stacks, best_table
from bench.stacks import Stack, command, connected_workers, parse_stacks, running_stack
from bench.workloads import Result
from timebank.asgi import _jobs_lock, first_process


def test_servers_times_worker_counts_with_n_as_the_cores() -> None:
    stacks = parse_stacks("uvicorn,granian", "1,N", cores=4)
    assert stacks == [Stack("uvicorn", 1), Stack("uvicorn", 4), Stack("granian", 1), Stack("granian", 4)]
    # On one core, N is 1: each stack is run once, not twice.
    assert parse_stacks("uvicorn", "1,N", cores=1) == [Stack("uvicorn", 1)]
    assert [s.label for s in parse_stacks(" granian , uvicorn,granian", "2", cores=2)] == ["granian x2", "uvicorn x2"]


@pytest.mark.parametrize(
    ("servers", "workers", "message"),
    [
        ("hypercorn", "1", "--servers takes some of uvicorn,granian"),
        ("", "1", "--servers"),
        ("uvicorn", "0", "--workers takes counts from 1 to 64"),
        ("uvicorn", "65", "--workers takes counts from 1 to 64"),
        ("uvicorn", "two", "--workers takes counts"),
        ("uvicorn", ",", "--workers needs at least one count"),
    ],
)
def test_unknown_servers_and_worker_counts_are_refused(servers: str, workers: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_stacks(servers, workers, cores=2)


def test_each_app_is_started_by_its_servers_own_way() -> None:
    granian = command(Stack("granian", 2), "timebank", 8123)
    assert granian[1:3] == ["-m", "granian"]
    assert granian[-1] == "timebank.asgi:app"
    assert granian[granian.index("--workers") : granian.index("--workers") + 2] == ["--workers", "2"]
    assert "--factory" in granian
    assert command(Stack("granian", 1), "ceiling", 8123)[-1] == "bench.ceiling:app"
    # uvicorn: the service as `timebank serve` runs it (its workers come from TIMEBANK_WORKERS).
    assert command(Stack("uvicorn", 2), "timebank", 8123)[1:4] == ["-m", "timebank.cli", "serve"]
    ceiling = command(Stack("uvicorn", 2), "ceiling", 8123)
    assert ceiling[1:3] == ["-m", "bench.ceiling"]
    assert ceiling[-2:] == ["--workers", "2"]


def result(workload: str, stack: Stack, throughput: float, errors: int = 0, rss_mb: float = 50.0) -> Result:
    return Result(
        id=workload,
        title=workload,
        throughput=throughput,
        unit="req/s",
        latency_ms={"p50": 1.0, "p99": 2.0, "p999": 3.0},
        errors=errors,
        server_peak_rss_mb=rss_mb,
        server_cpu_percent=90.0,
        loadgen_cpu_percent=5.0,
        machine_cpu_percent=99.0,
        server=stack.server,
        workers=stack.workers,
    )


def test_the_best_stack_per_workload_and_overall() -> None:
    u1, u2, g1 = Stack("uvicorn", 1), Stack("uvicorn", 2), Stack("granian", 1)
    results = [
        result("ceiling", u1, 1000.0),
        result("ceiling", u2, 1500.0),
        result("ceiling", g1, 3000.0),  # the ceiling is not timebank: it does not decide the default
        result("a", u1, 800.0),
        result("a", u2, 1000.0),
        result("a", g1, 2000.0, errors=3),  # fastest, but with errors: never the best
        result("d", u1, 1000.0),
        result("d", u2, 2000.0, rss_mb=120.0),
        result("d", g1, 1000.0),
        result("j.analyzed", u1, 900.0),  # not run under every stack: not in the overall choice
        result("f", u1, 50_000.0),
    ]
    results[-1].unit = "tx/s"  # verify runs without a server: not a stack's measurement
    best = best_stacks(results)
    assert best["stacks"] == ["uvicorn x1", "uvicorn x2", "granian x1"]
    assert {w: v["best"] for w, v in best["workloads"].items()} == {
        "ceiling": "granian x1",
        "a": "uvicorn x2",
        "d": "uvicorn x2",
        "j.analyzed": "uvicorn x1",
    }
    assert best["workloads"]["a"]["by_stack"]["granian x1"]["share_of_best"] == 2.0
    assert best["workloads"]["d"]["by_stack"]["uvicorn x1"]["share_of_best"] == 0.5
    overall = best["overall"]
    assert overall["workloads"] == ["a", "d"]
    assert overall["best"] == "uvicorn x2"
    assert overall["geometric_mean_share"]["uvicorn x1"] == round((0.8 * 0.5) ** 0.5, 3)
    assert overall["peak_rss_mb"]["uvicorn x2"] == 120.0
    printed = best_table(best)
    assert "overall" in printed
    assert "uvicorn x2" in printed.splitlines()[-2]


def test_only_the_first_process_of_a_server_runs_the_jobs() -> None:
    dsn = f"postgresql://bench-test-{os.getpid()}@127.0.0.1/jobs"
    held = len(_jobs_lock)
    try:
        assert first_process(dsn) is True
        # A second worker on the same database finds the lock taken; another database's first does not.
        assert first_process(dsn) is False
        assert first_process(dsn + "-other") is True
    finally:
        while len(_jobs_lock) > held:
            os.close(_jobs_lock.pop())
    assert first_process(dsn) is True  # released with the process that held it (here: its descriptor)
    os.close(_jobs_lock.pop())


@pytest.mark.slow
@pytest.mark.parametrize("server", ["uvicorn", "granian"])
async def test_a_stack_is_used_only_once_every_worker_is_in_and_leaves_nothing_behind(
    fresh_db: str, server: str
) -> None:
    stack = Stack(server, 2)
    async with running_stack(stack, "timebank", fresh_db, {"TIMEBANK_LOG_LEVEL": "warning"}) as running:
        # Both workers have their pools and revocation listeners: none is still starting.
        assert await connected_workers("timebank", fresh_db) == 2
        group = running.process.pid
        async with httpx.AsyncClient() as client:
            assert (await client.get(running.url + "/ready")).json() == {"status": "ready"}
    assert running.process.returncode is not None
    assert await connected_workers("timebank", fresh_db) == 0
    with pytest.raises(ProcessLookupError):  # the whole process group is gone, workers included
        os.killpg(group, 0)
