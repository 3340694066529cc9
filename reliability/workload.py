"""A history-checked workload against the real service process.

    python -m reliability.workload --clients 32 --seconds 60 --seed N [--database-url URL]

Creates a scratch migrated database (on the server `--database-url` names, else
TIMEBANK_TEST_DATABASE_URL, else 127.0.0.1:5432 if it answers, else an embedded one), starts
`timebank serve` on it, makes three communities with members through the API, then runs N
clients for T seconds, each sending a seeded random mix of credits, gifts, donations, pool grants,
redemptions, holds (some expiring within seconds), captures, releases, reversals and reads through
real HTTP. Every attempt is logged as JSON lines (invoke and completion). Afterwards each
indeterminate write is retried with its Idempotency-Key until it settles, a sample of settled
writes is retried to prove the key replays the first answer, every account is read once more, and
the checker (reliability.checker) compares the history with the final ledger and runs
`timebank verify`. It prints its figures and exits 1 if any violation was found.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from reliability.checker import Ledger, check, load_ledger
from reliability.clock import pass_time
from reliability.figures import Fault, Figures
from reliability.history import FAILED, INDETERMINATE, NOT_DELIVERED, OK, REPLAY, RESOLVE, RUN, HistoryWriter, Op
from reliability.operations import run_client
from reliability.processes import ServiceProcess
from reliability.public_log import check_log, log_files
from reliability.runner import Runner
from reliability.standby import AttachedStandby
from reliability.violation import Violation
from reliability.world import World, build_world
from tests import pg
from timebank.config import load_settings
from timebank.embedded import with_database
from timebank.logging import configure_logging

RESOLVE_ATTEMPTS = 8
RESOLVE_CONCURRENCY = 8
READY_TIMEOUT_SECONDS = 60.0
# After the last fault has recovered, clients keep going this long against the healthy service.
AFTER_FAULTS_SECONDS = 1.0


@dataclass(frozen=True)
class Goal:
    """What a run must have exercised before its clients stop, instead of a fixed duration.

    A run of fixed length covers less on a busy machine than on an idle one, so a short one can
    miss an operation kind by chance. With a goal the clients keep going until every kind has
    succeeded, every code was answered, a hold has expired and enough operations were run; the
    run's `seconds` is then only its bound.
    """

    kinds: frozenset[str]
    refusals: frozenset[str] = frozenset()
    operations: int = 0
    writes_settled: int = 0
    expiry: bool = True
    # What the service's jobs must have done (auto_confirm, request_expiry: history.JOB_KINDS).
    jobs: frozenset[str] = frozenset()

    def missing(self, ops: Sequence[Op], now: datetime, jobs_seen: Iterable[str] = ()) -> list[str]:
        """What the operations so far lack (empty when the goal is met), for the figures too."""
        run = [op for op in ops if op.client not in ("s", "f") and op.attempts and op.first.phase == RUN]
        lacking = [f"a successful {kind}" for kind in sorted(self.kinds - {op.kind for op in run if op.final == OK})]
        answered = {op.first.code for op in run if op.outcome == FAILED}
        lacking += [f"a refusal {code}" for code in sorted(self.refusals - answered)]
        if len(run) < self.operations:
            lacking.append(f"{self.operations} operations (ran {len(run)})")
        settled = sum(1 for op in run if op.is_write and op.final in (OK, FAILED))
        if settled < self.writes_settled:
            lacking.append(f"{self.writes_settled} settled writes (had {settled})")
        if self.expiry and not expired_hold(run, now):
            lacking.append("an expired hold")
        lacking += [f"a request stepped by the {job} job" for job in sorted(self.jobs - set(jobs_seen))]
        return lacking


def expired_hold(ops: Sequence[Op], now: datetime) -> bool:
    """Whether a hold placed in these operations has certainly expired by `now`: its expires_at has
    passed and no capture or release of it succeeded or may have (an answerless one might have)."""
    touched = {op.expect.get("hold_id") for op in ops if op.kind in ("capture", "release") and op.outcome != FAILED}
    for op in ops:
        if op.kind != "hold" or op.final != OK or "expires_at" not in (op.body or {}):
            continue
        attempt = op.final_attempt
        hold_id = attempt.body.get("id") if attempt is not None and isinstance(attempt.body, dict) else None
        expires_at = datetime.fromisoformat(str(op.body["expires_at"]).replace("Z", "+00:00"))
        if hold_id is not None and hold_id not in touched and expires_at < now:
            return True
    return False


@dataclass
class Options:
    clients: int = 32
    # How long the clients run; with a goal, the most they may run while it is not met.
    seconds: float = 60.0
    seed: int = 1
    database_url: str | None = None
    history: Path | None = None
    replays: int = 300
    keep: bool = False
    goal: Goal | None = None
    # A standby of the server (its superuser URL): the service reads the scratch database from it.
    standby_server_url: str | None = None


@dataclass
class Harness:
    """What a fault injector may act on while the workload runs."""

    options: Options
    runner: Runner
    service: ServiceProcess
    world: World
    started: float
    faults: list[Fault] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    goal_missing: list[str] = field(default_factory=list)
    # What the service's jobs have done so far (reliability.clock watches).
    jobs_seen: set[str] = field(default_factory=set)
    # The standby the service reads from, if any.
    standby: AttachedStandby | None = None

    def elapsed(self) -> float:
        return self.runner.now() - self.started


Injector = Callable[[Harness], Coroutine[Any, Any, None]]


@dataclass
class Result:
    ops: list[Op]
    violations: list[Violation]
    figures: Figures
    ledger: Ledger
    # What the goal still lacked when the run's time was up (empty: met, or no goal).
    goal_missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


async def _settle(runner: Runner, op: Op, semaphore: asyncio.Semaphore) -> None:
    """Retry an indeterminate write with its key, body and token until it settles (bounded)."""
    async with semaphore, runner.client() as http:
        for attempt_no in range(RESOLVE_ATTEMPTS):
            attempt = await runner.attempt(http, op, RESOLVE)
            if attempt.determinate:
                return
            await asyncio.sleep(min(2.0, 0.25 * 1.5**attempt_no))


async def resolve(runner: Runner) -> None:
    semaphore = asyncio.Semaphore(RESOLVE_CONCURRENCY)
    pending = [op for op in runner.ops if op.is_write and op.outcome == INDETERMINATE]
    await asyncio.gather(*(_settle(runner, op, semaphore) for op in pending))


def replay_candidates(ops: Sequence[Op], seed: int, sample: int) -> list[Op]:
    """Every write that was settled by a retry, and a seeded sample of the other settled writes.

    A refusal counts when the service remembers it under the key (a rule's 409 or 422); a request
    that never reached the server has nothing to replay.
    """
    settled = [
        op
        for op in ops
        if op.is_write
        and op.final_attempt is not None
        and (op.final == OK or (op.final == FAILED and op.final_attempt.status in (409, 422)))
        and op.final_attempt.code != NOT_DELIVERED
    ]
    retried = [op for op in settled if op.outcome == INDETERMINATE]
    others = [op for op in settled if op.outcome != INDETERMINATE]
    rng = random.Random(f"{seed}:replay")  # noqa: S311 -- a reproducible sample, not a secret.
    return retried + rng.sample(others, min(sample, len(others)))


async def replay(runner: Runner, ops: Sequence[Op]) -> None:
    semaphore = asyncio.Semaphore(RESOLVE_CONCURRENCY)

    async def again(op: Op) -> None:
        async with semaphore, runner.client() as http:
            await runner.attempt(http, op, REPLAY)

    await asyncio.gather(*(again(op) for op in ops))


async def final_reads(runner: Runner, world: World) -> None:
    """Read every account once more through the API, as the admin."""
    count = 0
    async with runner.client() as http:
        for community in world.communities:
            accounts = [*community.accounts.values(), *(m.account_id for m in community.all_members)]
            for account in accounts:
                count += 1
                op = Op(
                    op_id=f"f.{count}",
                    client="f",
                    kind="final_account",
                    community=community.slug,
                    actor=world.admin.label,
                    method="GET",
                    path=f"/v1/accounts/{account}",
                    key=None,
                    body=None,
                    expect={
                        "account_id": account,
                        "floor": community.floor_of(account),
                        "cap": community.cap_of(account),
                    },
                    token=world.admin.token,
                )
                await runner.attempt(http, runner.register(op), RUN)


async def verify_cli(database_url: str) -> tuple[int, str]:
    """Run `timebank verify` against the database; returns its exit status and output."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
    environment["TIMEBANK_DATABASE_URL"] = database_url
    environment["TIMEBANK_LOG_LEVEL"] = "warning"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "timebank.cli", "verify",
        env=environment, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 120)
    except TimeoutError:
        process.kill()
        await process.wait()
        return -1, "timebank verify did not finish in 120 s"
    return process.returncode or 0, output.decode(errors="replace")


async def _snapshot(database_url: str) -> Ledger:
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "timebank"})
    try:
        return await load_ledger(conn)
    finally:
        await conn.close()


GOAL_POLL_SECONDS = 0.05


async def _until_goal(harness: Harness, goal: Goal) -> list[str]:
    """Wait until the goal is met or the run's seconds are up; returns what it still lacks."""
    while True:
        missing = goal.missing(harness.runner.ops, datetime.now(UTC), harness.jobs_seen)
        if not missing or harness.elapsed() >= harness.options.seconds:
            return missing
        await asyncio.sleep(GOAL_POLL_SECONDS)


async def _drive(harness: Harness, injector: Injector | None) -> float:
    """Run the clients for the configured time (or until the goal) and every fault; returns the
    seconds they ran."""
    options, runner = harness.options, harness.runner
    stop = asyncio.Event()
    clients = [
        asyncio.create_task(run_client(runner, harness.world, i, options.seed, stop)) for i in range(options.clients)
    ]
    faults_over_at: list[float] = []
    clock = asyncio.Event()
    time_passing = asyncio.create_task(
        pass_time(
            harness.service.database_url, options.seed, runner.writer, clock, harness.jobs_seen, harness.runner.now
        )
    )

    async def inject(injector: Injector) -> None:
        await injector(harness)
        faults_over_at.append(harness.elapsed())

    injection = asyncio.create_task(inject(injector)) if injector else None
    try:
        if options.goal is None:
            await asyncio.sleep(options.seconds)
        else:
            harness.goal_missing = await _until_goal(harness, options.goal)
        if injection is not None:
            await injection
            # The clients run on against the recovered service for a while after the last fault.
            healthy_for = harness.elapsed() - faults_over_at[0]
            if healthy_for < AFTER_FAULTS_SECONDS:
                await asyncio.sleep(AFTER_FAULTS_SECONDS - healthy_for)
    finally:
        stop.set()
        clock.set()
        if injection is not None and not injection.done():
            injection.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await injection
        await asyncio.gather(*clients, time_passing)
    return harness.elapsed()


async def run(
    options: Options, server_url: str, injector: Injector | None = None, command: str = "workload", reproduce: str = ""
) -> Result:
    """Run a workload (with the injector's faults) on a scratch database of `server_url`; check it."""
    settings = load_settings({})
    name, database_url = await pg.migrated_database(server_url, settings, prefix="timebank_reliability")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    history_path = options.history or Path(tempfile.gettempdir()) / f"timebank-{command}-{options.seed}-{stamp}.jsonl"
    log_path = history_path.with_suffix(".service.log")
    admin_token = "tb_rel_" + secrets.token_urlsafe(24)
    writer = HistoryWriter(history_path)
    standby = (
        AttachedStandby(database_url, with_database(options.standby_server_url, name))
        if options.standby_server_url
        else None
    )
    service = ServiceProcess(database_url, admin_token, log_path, standby.standby_url if standby else "")
    try:
        await service.start()
        runner = Runner(service.url, writer)
        world = await build_world(runner, admin_token)
        if standby is not None:
            # Others' writes may lag on a standby: the world's members and accounts must be there first.
            await standby.catch_up("after the world was built")
        harness = Harness(options, runner, service, world, started=runner.now(), standby=standby)
        seconds = await _drive(harness, injector)
        if not await service.wait_ready(READY_TIMEOUT_SECONDS):
            harness.violations.append(Violation("recovery_failed", "the service was not ready after the workload"))
        await resolve(runner)
        await replay(runner, replay_candidates(runner.ops, options.seed, options.replays))
        if standby is not None:
            # The final reads are compared with every acknowledged write, whoever made it.
            await standby.catch_up("before the final reads")
        await final_reads(runner, world)
        ledger = await _snapshot(database_url)
        status, output = await verify_cli(database_url)
        violations = list(harness.violations) + check(runner.ops, ledger, reads_may_lag=standby is not None)
        if status != 0:
            violations.append(Violation("verify", f"`timebank verify` exited {status}:\n{output}"))
        violations += await check_log(database_url, log_path, runner.ops)  # every acknowledged transaction logged
        standby_figures = await standby.finish(runner.ops, service, harness.faults) if standby is not None else None
        violations += standby.violations if standby is not None else []
        figures = Figures(
            command=command,
            reproduce=reproduce,
            seed=options.seed,
            clients=options.clients,
            seconds=seconds,
            ops=runner.ops,
            violations=violations,
            history_path=history_path,
            faults=harness.faults,
            ledger=ledger,
            service_errors=service.errors(),
            standby=standby_figures,
        )
        return Result(runner.ops, violations, figures, ledger, harness.goal_missing)
    finally:
        writer.close()
        await service.stop()
        if not options.keep:
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                await pg.drop_database(server_url, name)
            if not service.errors():
                log_path.unlink(missing_ok=True)
                _remove_log_files(log_path)


def _remove_log_files(log_path: Path) -> None:
    """The run's public-log key and checkpoints, next to its service log."""
    key, checkpoints = log_files(log_path)
    key.unlink(missing_ok=True)
    shutil.rmtree(checkpoints, ignore_errors=True)


def arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the clients run (default 60)")
    parser.add_argument("--seed", type=int, default=None, help="the seed that reproduces the run (default: random)")
    parser.add_argument("--history", type=Path, default=None, help="where to write the history (JSON lines)")
    parser.add_argument("--replays", type=int, default=300, help="settled writes retried to check replays")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database and the service log")
    return parser


def options_from(args: argparse.Namespace) -> Options:
    if args.clients < 1 or args.seconds <= 0:
        raise SystemExit("--clients and --seconds must be positive")
    return Options(
        clients=args.clients,
        seconds=args.seconds,
        seed=args.seed if args.seed is not None else secrets.randbelow(1_000_000),
        database_url=getattr(args, "database_url", None),
        history=args.history,
        replays=args.replays,
        keep=args.keep,
    )


def quiet_logging() -> None:
    """The harness's own log (migrations applied, ...) at warning level, for a readable report."""
    configure_logging(load_settings({}, log_level="warning", log_format="console"))


def main(argv: Sequence[str] | None = None) -> int:
    quiet_logging()
    parser = arguments(__doc__.split("\n\n")[1].strip() if __doc__ else "")
    parser.add_argument("--database-url", help="owner URL of the PostgreSQL server to make the scratch database on")
    options = options_from(parser.parse_args(argv))
    reproduce = (
        f"python -m reliability.workload --clients {options.clients} --seconds {options.seconds:g} "
        f"--seed {options.seed}"
    )

    async def go(server_url: str) -> Result:
        return await run(options, server_url, reproduce=reproduce)

    if options.database_url:
        result = asyncio.run(go(options.database_url))
    else:
        with pg.postgres_server() as server_url:
            result = asyncio.run(go(server_url))
    print(result.figures.render())
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
