"""The machine a run was on, the printed table, and the JSON file."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.workloads import RSS_LIMIT_MB, Result

ROOT = Path(__file__).resolve().parent.parent


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_mb() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def _git_commit() -> str | None:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "")


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_mb": _memory_mb(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "git_commit": _git_commit(),
    }


def _fmt(value: float | None, digits: int = 1, suffix: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{suffix}"


def table(results: Iterable[Result], baseline: dict[str, Any], overall_rss_mb: float) -> str:
    header = (
        "stack", "workload", "what", "throughput", "p50 ms", "p99 ms", "p99.9 ms", "errors", "RSS MB",
        "server CPU%", "loadgen CPU%", "x pgbench", "x ceiling", "target", "pass",
    )  # fmt: skip
    rows: list[tuple[str, ...]] = [header]
    latency = baseline.get("latency_ms", {})
    rows.append((
        "-", "pgbench", f"TPC-B -M prepared, scale {baseline.get('scale')}", _fmt(baseline.get("tps"), 1, " tps"),
        _fmt(latency.get("p50"), 2), _fmt(latency.get("p99"), 2), _fmt(latency.get("p999"), 2),
        str(baseline.get("failed", 0)), "-", "-", _fmt(baseline.get("cpu_percent")), "1.00", "-", "baseline", "",
    ))  # fmt: skip
    for r in results:
        lat = r.latency_ms or {}
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[r.passed]
        rows.append((
            r.stack, r.id, r.title, _fmt(r.throughput, 1, " " + r.unit), _fmt(lat.get("p50"), 2),
            _fmt(lat.get("p99"), 2), _fmt(lat.get("p999"), 2), str(r.errors), _fmt(r.server_peak_rss_mb),
            _fmt(r.server_cpu_percent), _fmt(r.loadgen_cpu_percent), _fmt(r.ratio_to_baseline, 2),
            _fmt(r.ratio_to_ceiling, 2), r.target, verdict,
        ))  # fmt: skip
    rss_ok = "PASS" if overall_rss_mb < RSS_LIMIT_MB else "FAIL"
    rows.append(("", "rss", "server peak RSS per worker, whole run", "", "", "", "", "", _fmt(overall_rss_mb),
                 "", "", "", "", f"< {RSS_LIMIT_MB:.0f} MB", rss_ok))  # fmt: skip
    return _aligned(rows, numeric={3, 4, 5, 6, 7, 8, 9, 10, 11, 12})


def best_stacks(results: Iterable[Result]) -> dict[str, Any]:
    """Per HTTP workload, the stack with the most throughput (among those without errors), each
    stack's share of that best, and the stack best overall for timebank: the highest geometric mean
    of its shares over the workloads that every stack ran (the ceiling left out: it is not timebank)."""
    by_workload: dict[str, dict[str, Result]] = {}
    for r in results:
        if r.unit == "req/s" and r.throughput is not None and r.stack:
            by_workload.setdefault(r.id, {})[r.stack] = r
    stacks = list(dict.fromkeys(label for runs in by_workload.values() for label in runs))
    workloads: dict[str, Any] = {}
    for workload, runs in by_workload.items():
        clean = {label: r for label, r in runs.items() if r.errors == 0} or runs
        best_label = max(clean, key=lambda label: clean[label].throughput or 0.0)
        top = clean[best_label].throughput or 0.0
        workloads[workload] = {
            "best": best_label,
            "throughput": top,
            "by_stack": {
                label: {
                    "throughput": r.throughput,
                    "share_of_best": round((r.throughput or 0.0) / top, 3) if top else None,
                    "p99_ms": (r.latency_ms or {}).get("p99"),
                    "errors": r.errors,
                    "server_peak_rss_mb": r.server_peak_rss_mb,
                }
                for label, r in sorted(runs.items())
            },
        }
    scores: dict[str, float] = {}
    common = [w for w, v in workloads.items() if w != "ceiling" and len(v["by_stack"]) == len(stacks)]
    for label in stacks:
        shares = [workloads[w]["by_stack"][label]["share_of_best"] or 0.0 for w in common]
        if shares and all(shares):
            scores[label] = round(math.exp(sum(math.log(x) for x in shares) / len(shares)), 3)
    overall = max(scores, key=lambda label: scores[label]) if scores else None
    peak_rss = {
        label: max((w["by_stack"][label]["server_peak_rss_mb"] for w in workloads.values() if label in w["by_stack"]
                    and w is not workloads.get("ceiling")), default=0.0)
        for label in stacks
    }  # fmt: skip
    return {
        "stacks": stacks,
        "workloads": workloads,
        "overall": {"best": overall, "workloads": common, "geometric_mean_share": scores, "peak_rss_mb": peak_rss},
    }


def best_table(best: dict[str, Any]) -> str:
    """The best stack per workload, and each stack's throughput as a share of that best."""
    stacks: list[str] = best["stacks"]
    rows: list[tuple[str, ...]] = [("workload", "best stack", "best throughput", *stacks)]
    for workload, entry in best["workloads"].items():
        shares = [_fmt(entry["by_stack"].get(label, {}).get("share_of_best"), 2) for label in stacks]
        rows.append((workload, entry["best"], _fmt(entry["throughput"], 1, " req/s"), *shares))
    overall = best["overall"]
    means = [_fmt(overall["geometric_mean_share"].get(label), 2) for label in stacks]
    rows.append(("overall", overall["best"] or "-", "geometric mean of shares", *means))
    rss = [_fmt(overall["peak_rss_mb"].get(label)) for label in stacks]
    rows.append(("peak RSS MB", "", "timebank, all workers", *rss))
    return "best stack per workload (each stack's throughput as a share of the best):\n" + _aligned(
        rows, numeric=set(range(2, 3 + len(stacks)))
    )


def _aligned(rows: list[tuple[str, ...]], numeric: set[int]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
