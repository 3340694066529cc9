"""The benchmark command (`python -m bench`): how it judges results, and one tiny end-to-end run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import postgres
from bench.load import parse
from bench.stats import percentile, percentiles
from bench.workloads import Result, judge
from tests.tools import missing_tool

pytestmark = pytest.mark.slow  # started first (tests/conftest.py), so the workers finish together

ROOT = Path(__file__).resolve().parents[2]


def result(workload: str, throughput: float, p99: float = 1.0, errors: int = 0, unit: str = "req/s") -> Result:
    return Result(
        id=workload,
        title=workload,
        throughput=throughput,
        unit=unit,
        latency_ms={"p50": p99 / 2, "p99": p99, "p999": p99 * 2},
        errors=errors,
        server_peak_rss_mb=50.0,
        server_cpu_percent=90.0,
        loadgen_cpu_percent=5.0,
        machine_cpu_percent=99.0,
    )


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 1001)]
    assert percentiles(values) == {"p50": 500.0, "p99": 990.0, "p999": 999.0}
    assert percentile([7.0], 99.9) == 7.0
    assert percentile([], 50) == 0.0


def test_targets_follow_the_issue() -> None:
    results = {
        "a": result("a", 1500.0),  # 1.5x a baseline of 1000: just meets it
        "b": result("b", 1349.0),  # under 0.9 x a
        "c": result("c", 1000.0, errors=1),  # fast enough, but an error fails it
        "d": result("d", 3000.0, p99=20.0),  # 3x, but p99 must be under 20 ms
        "e.first": result("e.first", 10.0, p99=9.9),
        "e.deep": result("e.deep", 10.0, p99=10.0),
        "f": result("f", 100_000.0, unit="tx/s"),
        "g": result("g", 2.0, p99=1000.0),  # the report must answer under a second
        "h": result("h", 300.0),  # service request flows: recorded, judged on errors only
        "i": result("i", 20.0, errors=1),
        "j.unanalyzed": result("j.unanalyzed", 1000.0),
        "j.analyzed": result("j.analyzed", 899.0),  # an analyzed new database must keep up with an unanalyzed one
        "k": result("k", 500.0, p99=19.9),  # the public log's proofs: p99 under 20 ms
        "k.consistency": result("k.consistency", 500.0, p99=20.0),
    }
    judge(results, baseline_tps=1000.0)
    assert {k: r.passed for k, r in results.items()} == {
        "a": True,
        "b": False,
        "c": False,
        "d": False,
        "e.first": True,
        "e.deep": False,
        "f": True,
        "g": False,
        "h": True,
        "i": False,
        "j.unanalyzed": True,
        "j.analyzed": False,
        "k": True,
        "k.consistency": False,
    }
    assert results["h"].ratio_to_baseline == 0.3
    within_noise = {"j.unanalyzed": result("j.unanalyzed", 1000.0), "j.analyzed": result("j.analyzed", 900.0)}
    judge(within_noise, baseline_tps=1000.0)
    assert within_noise["j.analyzed"].passed is True
    quick = {"g": result("g", 2.0, p99=999.0)}
    judge(quick, baseline_tps=1000.0)
    assert quick["g"].passed is True
    assert results["a"].ratio_to_baseline == 1.5
    assert results["f"].ratio_to_baseline is None  # verify is not compared with pgbench
    alone = {"b": result("b", 5000.0)}
    judge(alone, baseline_tps=1000.0)
    assert alone["b"].passed is None  # b is judged against a, which did not run
    analyzed_alone = {"j.analyzed": result("j.analyzed", 5000.0)}
    judge(analyzed_alone, baseline_tps=1000.0)
    assert analyzed_alone["j.analyzed"].passed is None
    # With a run on either side, j.analyzed is judged against their mean: a machine that slowed down
    # over the three runs does not fail it (1,200 then 800: mean 1,000, 900 passes) ...
    drifting = {
        "j.unanalyzed": result("j.unanalyzed", 1200.0),
        "j.analyzed": result("j.analyzed", 900.0),
        "j.unanalyzed.after": result("j.unanalyzed.after", 800.0),
    }
    judge(drifting, baseline_tps=1000.0)
    assert drifting["j.analyzed"].passed is True
    assert drifting["j.unanalyzed.after"].passed is True
    assert drifting["j.analyzed"].target == ">= 0.9x mean of j.unanalyzed and j.unanalyzed.after"
    # ... and a slow analyzed run between two fast ones still fails.
    slow = {
        "j.unanalyzed": result("j.unanalyzed", 1000.0),
        "j.analyzed": result("j.analyzed", 850.0),
        "j.unanalyzed.after": result("j.unanalyzed.after", 1000.0),
    }
    judge(slow, baseline_tps=1000.0)
    assert slow["j.analyzed"].passed is False


def test_wrk_summary_is_parsed_from_the_marker_line() -> None:
    line = (
        'BENCH-JSON {"requests": 10, "duration_us": 2000000, "bytes": 1, "errors": {"connect": 0, "read": 0,'
        ' "write": 0, "status": 2, "timeout": 1}, "latency_us": {"min": 1, "mean": 2.5, "max": 9, "p50": 2,'
        ' "p90": 3, "p99": 8, "p999": 9}, "statuses": {"201": 8, "503": 2}}'
    )
    summary = parse("Running 2s test\n" + line + "\n")
    assert summary.requests == 10
    assert summary.errors.status == 2
    assert summary.latency_us.p999 == 9
    assert summary.statuses == {"201": 8, "503": 2}
    with pytest.raises(RuntimeError, match="BENCH-JSON"):
        parse("wrk: something went wrong\n")


def quick_bench(server_url: str, out: Path, *options: str) -> tuple[subprocess.CompletedProcess[str], Any]:
    """`python -m bench --quick` with tiny sizes and one-second workloads; its output and JSON document."""
    if shutil.which("wrk") is None:
        missing_tool("wrk", "apt-get install -y wrk")
    try:
        postgres.find_pgbench(15)
    except SystemExit:
        missing_tool("pgbench", "apt-get install -y postgresql-15 (or the PostgreSQL server's own package)")
    command = [
        sys.executable, "-m", "bench", "--quick", "--server-url", server_url, "--connections", "4",
        "--duration", "1", "--warmup", "0", "--communities", "2", "--volunteers", "5", "--pgbench-scale", "1",
        "--json", str(out), *options,
    ]  # fmt: skip
    # A bound, not a speed check: speed lives in the bench's own figures, never in a timed test.
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run, json.loads(out.read_text())


@pytest.mark.slow
def test_quick_run_measures_every_workload(server_url: str, tmp_path: Path) -> None:
    """Every workload under one server stack, next to the ceiling (about a minute)."""
    run, document = quick_bench(
        server_url, tmp_path / "bench.json", "--gift-members", "5", "--statement-entries", "300",
        "--report-entries", "900", "--page-size", "10", "--page-depth", "5", "--fresh-communities", "2",
        "--fresh-volunteers", "5", "--proof-transactions", "3000", "--servers", "uvicorn", "--workers", "1",
    )  # fmt: skip

    assert document["baseline"]["tps"] > 0
    assert document["baseline"]["clients"] == 4
    assert document["postgres"]["settings"]["synchronous_commit"] in (
        "on",
        "off",
        "local",
        "remote_write",
        "remote_apply",
    )
    assert document["machine"]["cores"] >= 1
    assert document["seed"]["statement_entries"] == 300
    assert document["stacks"] == [{"server": "uvicorn", "workers": 1}]
    workloads = {w["id"]: w for w in document["workloads"]}
    assert list(workloads) == [
        "ceiling",
        "a",
        "b",
        "c",
        "d",
        "e.first",
        "e.deep",
        "f",
        "g",
        "h",
        "i",
        "k",
        "k.consistency",
        "j.unanalyzed",
        "j.analyzed",
        "j.unanalyzed.after",
    ]
    for workload in workloads.values():
        assert workload["throughput"] > 0, workload
        assert workload["errors"] == 0, workload
        assert 10 < workload["server_peak_rss_mb"] < 2000, workload
        assert isinstance(workload["pass"], bool), workload
        assert workload["target"], workload
    timed = (
        "ceiling",
        "a",
        "b",
        "c",
        "d",
        "e.first",
        "e.deep",
        "g",
        "j.unanalyzed",
        "j.analyzed",
        "j.unanalyzed.after",
    )
    for key in (*timed, "k", "k.consistency"):
        w = workloads[key]
        assert 0 < w["p50_ms"] <= w["p99_ms"] <= w["p999_ms"], w
        assert w["ratio_to_baseline"] > 0, w
        assert w["ratio_to_ceiling"] > 0, w
        assert (w["server"], w["workers"]) == ("uvicorn", 1), w
        assert w["loadgen_cpu_percent"] is not None, w
        ok = "201" if key in ("ceiling", "a", "b", "c") or key.startswith("j.") else "200"
        assert w["detail"]["statuses"] == {ok: w["detail"]["requests"]}, w
    assert workloads["e.deep"]["detail"]["depth"] == 5
    # h: whole service request flows went through (ask, assign, check-in, report, confirm); i: batches.
    for key in ("h", "i"):
        assert workloads[key]["ratio_to_baseline"] > 0, workloads[key]
        assert set(workloads[key]["detail"]["statuses"]) <= {"200", "201"}, workloads[key]
    # Flows completed, counted without depending on speed: each connection carries one flow at a
    # time, so every answered step belongs to a completed flow (5 steps) or to one of at most 4
    # unfinished ones (up to 4 steps each). A loaded machine may finish no flow in one second, but
    # then it answered no more than 16 steps.
    h = workloads["h"]["detail"]
    assert 5 * h["flows"] <= h["requests"] <= 5 * h["flows"] + 4 * 4, workloads["h"]
    assert workloads["i"]["detail"]["credits_per_second"] > 0, workloads["i"]
    for key in ("j.unanalyzed", "j.analyzed", "j.unanalyzed.after"):
        scans = workloads[key]["detail"]["scans"]
        assert scans["postings"]["seq_scan"] == scans["transactions"]["seq_scan"] == 0, scans
    assert workloads["g"]["detail"]["entries"] >= 900
    # k: the ledger was topped up (set-wise) to 3,000 transactions and sealed; every proof answered 200.
    assert document["seed"]["log_topup_credits"] > 0
    assert document["seed"]["log_leaves"] >= 3000
    assert workloads["k"]["detail"]["leaves"] == workloads["k.consistency"]["detail"]["leaves"] >= 3000
    assert document["seed"]["report_entries"] >= 900
    assert workloads["f"]["detail"]["exit_code"] == 0
    assert workloads["f"]["detail"]["transactions"] >= 300 + workloads["a"]["detail"]["requests"]
    assert workloads["ceiling"]["ratio_to_ceiling"] == 1.0
    assert workloads["f"]["ratio_to_ceiling"] is None  # verify runs without a server
    # The ceiling is not timebank: its memory is not the service's.
    timebank_rss = max(w["server_peak_rss_mb"] for w in workloads.values() if w["id"] != "ceiling")
    assert document["server"]["peak_rss_mb"] >= timebank_rss
    assert "pgbench" in run.stdout
    assert "rss" in run.stdout


@pytest.mark.slow
def test_quick_run_under_each_server_and_worker_count(server_url: str, tmp_path: Path) -> None:
    """Two workloads under uvicorn and granian, each next to its own ceiling. One worker each: two
    workers of each server are started in tests/bench/test_stacks.py, and every stack more is a
    minute of CPU in the default run."""
    run, document = quick_bench(
        server_url, tmp_path / "stacks.json", "--workloads", "a,d", "--servers", "uvicorn,granian", "--workers", "1"
    )
    stacks = [(s["server"], s["workers"]) for s in document["stacks"]]
    assert stacks == [("uvicorn", 1), ("granian", 1)]
    measured = {(w["server"], w["workers"], w["id"]): w for w in document["workloads"]}
    assert set(measured) == {(server, workers, key) for server, workers in stacks for key in ("ceiling", "a", "d")}
    for (server, workers, key), w in measured.items():
        assert w["throughput"] > 0, w
        assert w["errors"] == 0, w  # each stack's writes carry Idempotency-Keys of their own
        assert w["ratio_to_baseline"] > 0, w
        ceiling = measured[server, workers, "ceiling"]["throughput"]
        assert w["ratio_to_ceiling"] == round(w["throughput"] / ceiling, 3), w
        ok = "200" if key == "d" else "201"
        assert w["detail"]["statuses"] == {ok: w["detail"]["requests"]}, w
    labels = [f"{server} x{workers}" for server, workers in stacks]
    best = document["best"]
    assert best["stacks"] == labels
    assert {w: v["best"] in labels for w, v in best["workloads"].items()} == {"ceiling": True, "a": True, "d": True}
    assert best["overall"]["best"] in labels
    assert best["overall"]["workloads"] == ["a", "d"]
    assert set(document["server"]["peak_rss_mb_by_stack"]) == set(labels)
    assert "best stack per workload" in run.stdout
    assert "granian x1" in run.stdout
