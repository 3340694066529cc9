"""The public log's bench workloads (`python -m bench.public_log`), run tiny so that they keep working."""

from __future__ import annotations

from bench.public_log import run


async def test_the_public_log_bench_runs_at_small_scale(server_url: str) -> None:
    report = await run(transactions=200, proofs=20, server_url=server_url)
    assert report["seal"]["leaves"] == 200
    assert report["proof"]["samples"] == 20
    assert report["verify_checkpoints"]["exit"] == 0, report
