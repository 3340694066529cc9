"""`python -m bench`: the pgbench baseline, then the real server under wrk, workload by workload.

    python -m bench [--connections 32] [--duration 20] [--workloads a,b,c,d,e,f]
                    [--servers uvicorn,granian] [--workers 1,N]
                    [--json bench/results/latest.json] [--quick]

One run on one machine: finds PostgreSQL as the tests do (or --server-url), measures
`pgbench -M prepared` (TPC-B-like) at the same client count in a scratch database, makes a
migrated database of its own, seeds it through the SQL operations, starts `timebank serve` on it
and drives it with wrk (bench/wrk/workload.lua) while sampling the server's memory and CPU. Each
server stack (--servers x --workers, bench/stacks.py) runs every chosen workload, and first the
ceiling (bench/ceiling.py: Litestar+asyncpg, one INSERT per request) under the same stack. Prints
a table with each result next to its target, pgbench and the ceiling, the best stack per workload,
writes the same as JSON, and drops its databases.
Needs wrk (Debian package wrk) and pgbench (postgresql-client) matching the server's version.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench import postgres, proofs, report
from bench.baseline import run_baseline
from bench.ceiling import create_table
from bench.fresh import fresh_credits
from bench.ledger_fill import fill_credits
from bench.load import find_wrk
from bench.procs import Sampler, hwm_kb
from bench.seed import Community, ReportHistory, ReportSeeder, Seeder, Statement, discover, discover_report
from bench.stacks import Stack, parse_stacks, running_stack
from bench.workloads import (
    TITLES,
    HttpLoad,
    Result,
    deep_cursor,
    http_workload,
    judge,
    relate_to_ceiling,
    verify_workload,
)
from timebank.config import load_settings
from timebank.embedded import with_database
from timebank.logging import configure_logging
from timebank.migrate import migrate

WORKLOADS = ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k")
# Workload i's volunteers: this many batches' worth, each batch crediting a different group.
BATCHES_PER_COMMUNITY = 10


@dataclass
class Options:
    connections: int
    duration: int
    warmup: int
    threads: int
    workloads: tuple[str, ...]
    json: Path
    quick: bool
    server_url: str | None
    communities: int
    volunteers: int
    gift_members: int
    statement_entries: int
    page_size: int
    page_depth: int
    verify_transactions: int
    report_entries: int
    report_months: int
    report_connections: int
    flow_members: int
    batch_size: int
    proof_transactions: int
    pgbench_scale: int
    fresh_communities: int
    fresh_volunteers: int
    status_codes: bool
    keep_database: bool
    reuse_database: str | None
    server_env: dict[str, str] = field(default_factory=dict)
    stacks: list[Stack] = field(default_factory=list)


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--connections", type=int, default=32, help="HTTP connections, and pgbench clients (default 32)")
    add("--duration", type=int, help="seconds measured per workload (default 20; --quick 3)")
    add("--warmup", type=int, help="seconds of unmeasured load before each workload (default 3; --quick 1)")
    add("--threads", type=int, default=2, help="wrk threads and pgbench -j (default 2)")
    add("--workloads", default=",".join(WORKLOADS), help=f"which of {','.join(WORKLOADS)} to run (default all)")
    add("--json", type=Path, default=Path("bench/results/latest.json"), help="where to write the results")
    add("--quick", action="store_true", help="small data and short runs (about two minutes): a smoke check")
    add("--server-url", help="superuser URL of the PostgreSQL to use (default: found as the tests find theirs)")
    add("--communities", type=int, help="communities of volunteers (default 100; --quick 10)")
    add("--volunteers", type=int, help="volunteers per community (default 100; --quick 20)")
    add("--gift-members", type=int, default=100, help="members giving to each other in workload c (default 100)")
    add("--statement-entries", type=int, help="entries on the statement account (default 1,000,000; --quick 10,000)")
    add("--page-size", type=int, default=50, help="statement page size (default 50)")
    add("--page-depth", type=int, default=1000, help="how many pages deep the deep page is (default 1000)")
    add("--verify-transactions", type=int, help="ledger size for f (default 1,000,000; --quick 0: as seeded)")
    add("--report-entries", type=int, help="entries of the report's community (default 1,000,000; --quick 10,000)")
    add("--report-months", type=int, default=12, help="months the report's community's history spans (default 12)")
    add("--report-connections", type=int, default=2, help="HTTP connections asking for reports at once (default 2)")
    add("--flow-members", type=int, help="members (volunteers and residents) of workload h (default 100; --quick 20)")
    add("--batch-size", type=int, help="volunteers credited by each activity batch of i (default 50; --quick 10)")
    add("--proof-transactions", type=int, help="ledger size sealed for k (default 1,000,000; --quick 2,000)")
    add("--fresh-communities", type=int, default=10, help="communities of workload j's new database (default 10)")
    add("--fresh-volunteers", type=int, default=100, help="volunteers per community there (default 100)")
    add("--pgbench-scale", type=int, help="pgbench -i scale (default: --connections; --quick 4)")
    add("--no-status-codes", action="store_true", help="do not count responses by status (saves wrk some CPU)")
    add("--keep-database", action="store_true", help="leave the seeded database in place, to --reuse-database later")
    add("--reuse-database", metavar="NAME", help="measure on a database an earlier --keep-database run seeded")
    add("--server-env", action="append", default=[], metavar="NAME=VALUE", help="a TIMEBANK_* setting (serve, verify)")
    add("--servers", default="uvicorn,granian", help="servers to run every workload under (default uvicorn,granian)")
    add("--workers", default="1,N", help="worker process counts for each server; N: the cores (default 1,N)")
    args = parser.parse_args(argv)
    quick = bool(args.quick)

    def pick(value: int | None, full: int, fast: int) -> int:
        return value if value is not None else (fast if quick else full)

    chosen = tuple(w.strip() for w in args.workloads.split(",") if w.strip())
    unknown = set(chosen) - set(WORKLOADS)
    if unknown or not chosen:
        parser.error(f"--workloads takes some of {','.join(WORKLOADS)}")
    if (args.report_months < 1) or (args.report_connections < 1):
        parser.error("--report-months and --report-connections must be at least 1")
    server_env, stacks = _server_options(parser, args)
    options = Options(
        connections=args.connections,
        duration=pick(args.duration, 20, 3),
        warmup=pick(args.warmup, 3, 1),
        threads=args.threads,
        workloads=tuple(w for w in WORKLOADS if w in chosen),
        json=args.json,
        quick=quick,
        server_url=args.server_url,
        communities=pick(args.communities, 100, 10),
        volunteers=pick(args.volunteers, 100, 20),
        gift_members=args.gift_members,
        statement_entries=pick(args.statement_entries, 1_000_000, 10_000),
        page_size=args.page_size,
        page_depth=args.page_depth,
        verify_transactions=pick(args.verify_transactions, 1_000_000, 0),
        report_entries=pick(args.report_entries, 1_000_000, 10_000),
        report_months=args.report_months,
        report_connections=args.report_connections,
        flow_members=pick(args.flow_members, 100, 20),
        batch_size=pick(args.batch_size, 50, 10),
        proof_transactions=pick(args.proof_transactions, 1_000_000, 2_000),
        pgbench_scale=pick(args.pgbench_scale, args.connections, 4),
        fresh_communities=args.fresh_communities,
        fresh_volunteers=args.fresh_volunteers,
        status_codes=not args.no_status_codes,
        keep_database=args.keep_database or args.reuse_database is not None,
        reuse_database=args.reuse_database,
        server_env=server_env,
        stacks=stacks,
    )
    if options.duration < 1 or options.connections < 1 or options.threads < 1 or options.gift_members < 2:
        parser.error("--duration, --connections and --threads must be at least 1, --gift-members at least 2")
    if options.flow_members < 2 or not 1 <= options.batch_size <= 500:
        parser.error("--flow-members must be at least 2, --batch-size 1 to 500")
    return options


def _server_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[dict[str, str], list[Stack]]:
    """The servers' TIMEBANK_* settings and the server stacks to run under, or a usage error."""
    server_env = {}
    for item in args.server_env:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("TIMEBANK_"):
            parser.error(f"--server-env wants TIMEBANK_NAME=VALUE, not {item!r}")
        server_env[name] = value
    try:
        stacks = parse_stacks(args.servers, args.workers, os.cpu_count() or 1)
    except ValueError as exc:
        parser.error(str(exc))
    return server_env, stacks


def say(message: str) -> None:
    print(message, flush=True)


def redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


class Progress:
    """Prints a seeding step's progress about every ten percent."""

    def __init__(self, what: str, total: int) -> None:
        self.what = what
        self.total = total
        self.next = 0.1

    def __call__(self, done: int, seconds: float) -> None:
        if done >= self.total * self.next or done == self.total:
            rate = done / seconds if seconds else 0.0
            left = (self.total - done) / rate if rate else 0.0
            say(f"  {self.what}: {done:,}/{self.total:,} in {seconds:,.0f} s ({rate:,.0f}/s, ~{left:,.0f} s left)")
            while self.next * self.total <= done:
                self.next += 0.1


@dataclass
class Seeded:
    communities: list[Community] = field(default_factory=list)
    gifts: Community | None = None
    statement: Statement | None = None
    history: ReportHistory | None = None
    flows: Community | None = None
    batches: Community | None = None
    log: proofs.SealedLog | None = None
    report: dict[str, Any] = field(default_factory=dict)


async def count_transactions(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        count: int = await conn.fetchval("select count(*) from timebank.transactions")
    finally:
        await conn.close()
    return count


async def seed(opts: Options, seeder: Seeder, url: str) -> Seeded:
    seeded = Seeded()
    info = seeded.report
    wanted = set(opts.workloads)
    if opts.reuse_database:
        seeded.communities, seeded.gifts, seeded.statement = await discover(seeder)
        seeded.history = await discover_report(seeder)
        info["reused_database"] = opts.reuse_database
        info["communities"] = len(seeded.communities)
        info["volunteers"] = sum(len(c.members) for c in seeded.communities)
        info["gift_members"] = len(seeded.gifts.members) if seeded.gifts else 0
        info["statement_entries"] = seeded.statement.entries if seeded.statement else 0
        say(
            f"reusing {opts.reuse_database}: "
            + ", ".join(f"{k} {v:,}" for k, v in info.items() if k != "reused_database")
        )
        seeds = (("c", seeded.gifts), ("e", seeded.statement), ("g", seeded.history))
        lacking = [w for w, have in seeds if w in wanted and have is None]
        lacking += [w for w in ("a", "b", "d", "k") if w in wanted and not seeded.communities]
        if lacking:
            raise SystemExit(f"{opts.reuse_database} was not seeded for workloads {','.join(sorted(lacking))}")
        wanted -= {"a", "b", "c", "d", "e", "g"}
    if wanted & {"a", "b", "d"} or (wanted & {"f", "k"} and not seeded.communities):
        started = time.perf_counter()
        seeded.communities = await seeder.communities(opts.communities, opts.volunteers)
        info["communities"] = opts.communities
        info["volunteers"] = opts.communities * opts.volunteers
        info["communities_seconds"] = round(time.perf_counter() - started, 2)
        say(f"seeded {opts.communities} communities x {opts.volunteers} volunteers in {info['communities_seconds']} s")
    if "c" in wanted:
        started = time.perf_counter()
        seeded.gifts = await seeder.gift_community(opts.gift_members)
        info["gift_members"] = opts.gift_members
        info["gift_seconds"] = round(time.perf_counter() - started, 2)
        say(f"seeded {opts.gift_members} gift members in {info['gift_seconds']} s")
    if "e" in wanted:
        say(f"seeding {opts.statement_entries:,} statement entries on one account (credits, in batches)")
        progress = Progress("statement entries", opts.statement_entries)
        seeded.statement = await seeder.statement(opts.statement_entries, progress)
        info["statement_entries"] = opts.statement_entries
        info["statement_seconds"] = round(seeded.statement.seconds, 1)
        info["statement_entries_per_second"] = round(opts.statement_entries / max(seeded.statement.seconds, 1e-9), 1)
    await seed_report_and_services(opts, seeder, seeded, wanted)
    await seed_ledger_size(opts, seeder, seeded, url, wanted)
    info["settle_seconds"] = round(await postgres.settle(url), 1)
    info["transactions"] = await count_transactions(url)
    say(f"ledger: {info['transactions']:,} transactions; VACUUM ANALYZE + CHECKPOINT took {info['settle_seconds']} s")
    return seeded


async def seed_report_and_services(opts: Options, seeder: Seeder, seeded: Seeded, wanted: set[str]) -> None:
    """Workload g's history, h's members (volunteers and residents with hours) and i's volunteers."""
    info = seeded.report
    if "g" in wanted:
        seeded.history = await seed_report(opts, seeder, info)
    if "h" in wanted:
        started = time.perf_counter()
        seeded.flows = await seeder.gift_community(opts.flow_members, "flows")
        info["flow_members"] = opts.flow_members
        info["flow_seconds"] = round(time.perf_counter() - started, 2)
        say(f"seeded {opts.flow_members} flow members (volunteers and residents) in {info['flow_seconds']} s")
    if "i" in wanted:
        started = time.perf_counter()
        seeded.batches = await seeder.community("batches", opts.batch_size * BATCHES_PER_COMMUNITY)
        info["batch_volunteers"] = opts.batch_size * BATCHES_PER_COMMUNITY
        info["batch_seconds"] = round(time.perf_counter() - started, 2)
        say(f"seeded {info['batch_volunteers']} volunteers for activity batches in {info['batch_seconds']} s")


async def seed_ledger_size(opts: Options, seeder: Seeder, seeded: Seeded, url: str, wanted: set[str]) -> None:
    """f's ledger topped up to --verify-transactions (through post_credits), then k's sealed log."""
    info = seeded.report
    if "f" in wanted:
        missing = opts.verify_transactions - await count_transactions(url)
        if missing > 0:
            say(f"seeding {missing:,} more credits so that f verifies {opts.verify_transactions:,} transactions")
            seconds = await seeder.credits(seeded.communities, missing, Progress("credits", missing))
            info["topup_credits"] = missing
            info["topup_seconds"] = round(seconds, 1)
    if "k" in wanted:  # last: the seal takes in every transaction seeded
        seeded.log = await seed_log(opts, seeder, seeded, url)


async def seed_log(opts: Options, seeder: Seeder, seeded: Seeded, url: str) -> proofs.SealedLog:
    """Workload k: the ledger topped up to --proof-transactions (set-wise), sealed and signed (bench/proofs.py)."""
    info = seeded.report
    missing = opts.proof_transactions - await count_transactions(url)
    if missing > 0:
        say(f"seeding {missing:,} more credits (set-wise) so that k proves a log of {opts.proof_transactions:,}")
        members = [m.id for c in seeded.communities for m in c.members]
        seconds = await fill_credits(
            url, seeder.admin, members, missing, seeder.request_id, Progress("credits", missing)
        )
        info["log_topup_credits"] = missing
        info["log_topup_seconds"] = round(seconds, 1)
    say("sealing the public log (timebank log seal) for workload k")
    sealed = await proofs.sample(url, seeder, await proofs.seal(url, opts.server_env))
    info["log_leaves"] = sealed.tree_size
    info["log_seal_seconds"] = round(sealed.seal_seconds, 1)
    say(f"sealed {sealed.tree_size:,} leaves in {info['log_seal_seconds']} s, one checkpoint signed")
    return sealed


def later_runs(opts: Options, seeded: Seeded) -> dict[str, tuple[str, list[tuple[str, str]], dict[str, Any]]]:
    """wrk's mode, lines and details for h (resident, its provider, token), i (slug, the batch's
    volunteers, token) and k (proof paths, the auditor's token or "-" for the public one)."""
    runs: dict[str, tuple[str, list[tuple[str, str]], dict[str, Any]]] = {}
    if "h" in opts.workloads and seeded.flows is not None:
        members, token = seeded.flows.members, seeded.flows.coordinator_token
        # Each member is served by the next one: never its own provider.
        rows = [(f"{m.id} {members[(i + 1) % len(members)].id}", token) for i, m in enumerate(members)]
        runs["h"] = ("flow", rows, {"members": len(members)})
    if "i" in opts.workloads and seeded.batches is not None:
        batches, size = seeded.batches, opts.batch_size
        rows = [
            (f"{batches.slug} {','.join(str(m.id) for m in batches.members[k : k + size])}", batches.coordinator_token)
            for k in range(0, len(batches.members), size)
        ]
        runs["i"] = ("batch", rows, {"batch_size": size, "batches": len(rows)})
    if "k" in opts.workloads and seeded.log is not None:
        sealed = seeded.log
        runs["k"] = ("get", sealed.inclusion_rows(), {"leaves": sealed.tree_size})
        runs["k.consistency"] = ("get", sealed.consistency_rows(), {"leaves": sealed.tree_size})
    return runs


async def seed_report(opts: Options, seeder: Seeder, info: dict[str, Any]) -> ReportHistory:
    say(f"seeding {opts.report_entries:,} entries of one community over {opts.report_months} months (workload g)")
    progress = Progress("report entries", opts.report_entries)
    history = await ReportSeeder(seeder).seed(opts.report_entries, opts.report_months, progress)
    info["report_entries"] = history.entries
    info["report_months"] = opts.report_months
    info["report_seconds"] = round(history.seconds, 1)
    return history


async def measure_report(opts: Options, history: ReportHistory, load: HttpLoad, sampler: Sampler) -> Result:
    """Workload g: the report of the middle month, asked for by a few connections at once.

    Offices ask for a report now and then, not 32 at a time: --report-connections (default 2).
    """
    path = f"/v1/communities/{history.slug}/reports/monthly?month={history.month}"
    few = replace(load, connections=opts.report_connections, threads=min(opts.threads, opts.report_connections))
    say(f"g: {TITLES['g']}, {history.month} of {history.entries:,} entries over {history.months} months"
        f" ({few.connections} connections, {opts.duration} s)")  # fmt: skip
    result = await http_workload(
        "g", "get", [(path, history.coordinator_token)], few, sampler,
        entries=history.entries, months=history.months, month=history.month, connections=few.connections,
    )  # fmt: skip
    p99 = (result.latency_ms or {}).get("p99")
    say(f"   {result.throughput:,.1f} req/s, p99 {p99} ms, errors {result.errors}")
    return result


def server_settings(opts: Options) -> dict[str, str]:
    """The TIMEBANK_* settings every server of the run gets (the ceiling reads its pool size from them too)."""
    return {"TIMEBANK_LOG_LEVEL": "warning"} | opts.server_env


async def measure_ceiling(opts: Options, ceiling_url: str, stack: Stack, run_id: str) -> Result:
    """The ceiling under `stack`: bench/ceiling.py's one INSERT per request, as hard as the workloads."""
    async with running_stack(stack, "ceiling", ceiling_url, server_settings(opts)) as server:
        sampler = Sampler(server.process.pid)
        sampler.start()
        load = HttpLoad(
            server.url, opts.connections, opts.threads, opts.duration, opts.warmup, run_id, opts.status_codes
        )
        try:
            say(f"ceiling: {TITLES['ceiling']} ({stack.label}, {opts.duration} s)")
            result = await http_workload("ceiling", "ceiling", [("/hits", "-")], load, sampler)
        finally:
            await sampler.stop()
    say(f"   {result.throughput:,.1f} req/s, p99 {(result.latency_ms or {}).get('p99')} ms, errors {result.errors}")
    return result


async def measure(opts: Options, url: str, seeded: Seeded, run_id: str, stack: Stack, verify: bool) -> dict[str, Any]:
    """Workloads a to i and k under `stack`; f (`timebank verify`, no server involved) only when `verify`."""
    results: dict[str, Result] = {}
    async with running_stack(stack, "timebank", url, server_settings(opts)) as server:
        sampler = Sampler(server.process.pid)
        sampler.start()
        load = HttpLoad(
            server.url, opts.connections, opts.threads, opts.duration, opts.warmup, run_id, opts.status_codes
        )

        async def run(workload: str, mode: str, rows: list[tuple[str, str]], title: str = "", **detail: Any) -> None:
            say(f"{workload}: {title or TITLES[workload]} ({len(rows):,} rows, {stack.label}, {opts.duration} s)")
            result = await http_workload(workload, mode, rows, load, sampler, **detail)
            result.title = title or result.title
            results[workload] = result
            say(
                f"   {result.throughput:,.1f} req/s, p99 {(result.latency_ms or {}).get('p99')} ms, "
                f"errors {result.errors}, server RSS {result.server_peak_rss_mb} MB"
            )

        try:
            everyone = [(m.id, c.coordinator_token) for c in seeded.communities for m in c.members]
            if "a" in opts.workloads:
                await run("a", "credit", [(str(m), t) for m, t in everyone], volunteers=len(everyone))
            if "b" in opts.workloads:
                hot = seeded.communities[0]
                rows = [(str(m.id), hot.coordinator_token) for m in hot.members]
                await run("b", "credit", rows, volunteers=len(rows))
            if "c" in opts.workloads and seeded.gifts is not None:
                gifts = seeded.gifts
                rows = [(str(m.id), t) for m, t in zip(gifts.members, gifts.tokens, strict=True)]
                await run("c", "gift", rows, f"gifts among {len(rows)} members", members=len(rows))
            if "d" in opts.workloads:
                rows = [
                    (f"/v1/accounts/{m.account_id}", c.coordinator_token) for c in seeded.communities for m in c.members
                ]
                await run("d", "get", rows, accounts=len(rows))
            if "e" in opts.workloads and seeded.statement is not None:
                statement = seeded.statement
                first = f"/v1/accounts/{statement.member.account_id}/entries?limit={opts.page_size}"
                await run("e.first", "get", [(first, statement.token)], entries=statement.entries, depth=0)
                deep, depth = await deep_cursor(server.url, first, statement.token, opts.page_depth)
                title = f"statement, page {depth:,} deep"
                await run("e.deep", "get", [(deep, statement.token)], title, entries=statement.entries, depth=depth)
            if "f" in opts.workloads and verify:
                transactions = await count_transactions(url)
                say(f"f: timebank verify over {transactions:,} transactions")
                results["f"] = await verify_workload(url, transactions, sampler, opts.server_env)
                f = results["f"]
                if f.throughput is None:
                    say(f"   verify FAILED (exit {f.detail['exit_code']}):\n{f.detail['output'][-1000:]}")
                else:
                    say(f"   {f.throughput:,.1f} tx/s in {f.detail['seconds']} s")
            if "g" in opts.workloads and seeded.history is not None:
                results["g"] = await measure_report(opts, seeded.history, load, sampler)
            for workload, (mode, rows, detail) in later_runs(opts, seeded).items():
                await run(workload, mode, rows, **detail)
        finally:
            await sampler.stop()
            peak_kb = max(sampler.peak_rss_kb, hwm_kb(server.process.pid))
    return {"results": results, "server_peak_rss_mb": round(peak_kb / 1024, 1), "rss_samples": sampler.samples}


async def measure_stacks(opts: Options, server_url: str, url: str, seeded: Seeded, run_id: str) -> dict[str, Any]:
    """Under each server stack in turn: the ceiling, then the chosen workloads (j on databases of its own).

    The stacks share the seeded database, so write workloads under a later stack meet a ledger the
    earlier ones grew (by seconds' worth of credits: small next to the seeded data of a full run).
    Memory is judged per worker process: each stack's peak (all its processes) over its workers.
    """
    by_stack: dict[str, dict[str, Result]] = {}
    peak_by_stack: dict[str, float] = {}
    samples = 0
    ceiling_name, ceiling_url = await postgres.scratch_database(server_url, "timebank_bench_ceiling")
    try:
        await create_table(ceiling_url)
        for index, stack in enumerate(opts.stacks):
            say(f"== {stack.label}")
            # Every write carries a fresh Idempotency-Key: the run's id, the stack, the workload, a count.
            stack_run = f"{run_id}-{stack.server}{stack.workers}"
            results = {"ceiling": await measure_ceiling(opts, ceiling_url, stack, stack_run)}
            peak_mb = 0.0
            if set(opts.workloads) - {"j"}:
                measured = await measure(opts, url, seeded, stack_run, stack, verify=index == 0)
                results |= measured["results"]
                peak_mb, samples = measured["server_peak_rss_mb"], samples + measured["rss_samples"]
            if "j" in opts.workloads:
                load = HttpLoad(
                    "", opts.connections, opts.threads, opts.duration, opts.warmup, stack_run, opts.status_codes
                )
                fresh = await fresh_credits(
                    server_url, stack_run, load, server_settings(opts), opts.fresh_communities, opts.fresh_volunteers,
                    say, stack,
                )  # fmt: skip
                results |= fresh
                peak_mb = max([peak_mb, *(r.server_peak_rss_mb for r in fresh.values())])
            for result in results.values():
                result.server, result.workers = stack.server, stack.workers
            by_stack[stack.label] = results
            peak_by_stack[stack.label] = peak_mb
    finally:
        await postgres.drop_database(server_url, ceiling_name)
    per_worker = max(peak_by_stack[s.label] / s.workers for s in opts.stacks)
    return {
        "by_stack": by_stack,
        "server_peak_rss_mb": round(per_worker, 1),
        "peak_rss_mb_by_stack": peak_by_stack,
        "rss_samples": samples,
    }


async def run(opts: Options, server_url: str) -> dict[str, Any]:
    find_wrk()
    run_id = uuid.uuid4().hex[:10]
    started = datetime.now(UTC)
    info = await postgres.server_info(server_url)
    say(f"PostgreSQL {info.settings['server_version']}, synchronous_commit={info.settings['synchronous_commit']}")
    say(f"baseline: pgbench -M prepared -c {opts.connections} -j {opts.threads} -T {opts.duration}, "
        f"scale {opts.pgbench_scale}")  # fmt: skip
    baseline = await run_baseline(
        server_url, info.major, opts.connections, opts.threads, opts.duration, opts.pgbench_scale
    )
    say(f"   {baseline.tps:,.1f} tps, p99 {baseline.latency_ms['p99']:.2f} ms")
    if opts.reuse_database:
        name, url = opts.reuse_database, with_database(server_url, opts.reuse_database)
        await migrate(load_settings({}), url)  # the code may have moved on since it was seeded
    else:
        name, url = await postgres.migrated_database(server_url, "timebank_bench")
    say(f"database {name}")
    try:
        seeder = await Seeder.connect(url, run_id)
        try:
            seeded = await seed(opts, seeder, url)
        finally:
            await seeder.close()
        measured = await measure_stacks(opts, server_url, url, seeded, run_id)
    finally:
        if opts.keep_database:
            say(f"kept database {name}: {redacted(url)}")
        else:
            await postgres.drop_database(server_url, name)
    for stack_results in measured["by_stack"].values():
        judge(stack_results, baseline.tps)
        relate_to_ceiling(stack_results, stack_results.get("ceiling"))
    results: list[Result] = [r for stack_results in measured["by_stack"].values() for r in stack_results.values()]
    rss_ok = measured["server_peak_rss_mb"] < 200.0
    verdicts = [r.passed for r in results if r.passed is not None] + [rss_ok]
    best = report.best_stacks(results)
    return {
        "command": ["python", "-m", "bench", *sys.argv[1:]],
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "machine": report.machine(),
        "postgres": postgres.describe(info) | {"url": redacted(server_url)},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()} | {"run_id": run_id},
        "baseline": asdict(baseline),
        "seed": seeded.report,
        "stacks": [{"server": s.server, "workers": s.workers} for s in opts.stacks],
        "workloads": [r.as_json() for r in results],
        "best": best,
        "server": {
            # The most any stack held per worker process (its peak, all processes, over its workers).
            "peak_rss_mb": measured["server_peak_rss_mb"],
            "peak_rss_mb_by_stack": measured["peak_rss_mb_by_stack"],
            "rss_samples": measured["rss_samples"],
        },
        "targets": {"server_rss_under_200_mb": rss_ok, "all_pass": all(verdicts)},
        "_results": results,
    }


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging(load_settings({"TIMEBANK_LOG_LEVEL": "warning"}))
    with postgres.postgres_server(opts.server_url) as server_url:
        document = asyncio.run(run(opts, server_url))
    results: list[Result] = document.pop("_results")
    say("")
    say(report.table(results, document["baseline"], document["server"]["peak_rss_mb"]))
    say("")
    say(report.best_table(document["best"]))
    report.write_json(opts.json, document)
    say(f"\nwrote {opts.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
