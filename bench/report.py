"""The machine a run was on, the printed table, and the JSON file."""

from __future__ import annotations

import json
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
        "workload", "what", "throughput", "p50 ms", "p99 ms", "p99.9 ms", "errors", "RSS MB",
        "server CPU%", "loadgen CPU%", "x pgbench", "target", "pass",
    )  # fmt: skip
    rows: list[tuple[str, ...]] = [header]
    latency = baseline.get("latency_ms", {})
    rows.append((
        "pgbench", f"TPC-B -M prepared, scale {baseline.get('scale')}", _fmt(baseline.get("tps"), 1, " tps"),
        _fmt(latency.get("p50"), 2), _fmt(latency.get("p99"), 2), _fmt(latency.get("p999"), 2),
        str(baseline.get("failed", 0)), "-", "-", _fmt(baseline.get("cpu_percent")), "1.00", "baseline", "",
    ))  # fmt: skip
    for r in results:
        lat = r.latency_ms or {}
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[r.passed]
        rows.append((
            r.id, r.title, _fmt(r.throughput, 1, " " + r.unit), _fmt(lat.get("p50"), 2), _fmt(lat.get("p99"), 2),
            _fmt(lat.get("p999"), 2), str(r.errors), _fmt(r.server_peak_rss_mb), _fmt(r.server_cpu_percent),
            _fmt(r.loadgen_cpu_percent),
            _fmt(r.ratio_to_baseline, 2), r.target, verdict,
        ))  # fmt: skip
    rss_ok = "PASS" if overall_rss_mb < RSS_LIMIT_MB else "FAIL"
    rows.append(("rss", "server peak RSS, whole run", "", "", "", "", "", _fmt(overall_rss_mb), "", "", "",
                 f"< {RSS_LIMIT_MB:.0f} MB", rss_ok))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    numeric = {2, 3, 4, 5, 6, 7, 8, 9, 10}
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
