"""The history-checked workload with crashes: `kill -9` of the service and of PostgreSQL.

    python -m reliability.crash --clients 32 --seconds 60 --seed N --service-kills 5 --postgres-kills 1

Starts a PostgreSQL of its own in a temporary directory under /tmp (never anyone's running
server) and a streaming-replication standby of it (unless --no-standby) that the service reads
from, runs the workload of reliability.workload on them, and meanwhile, at moments drawn from the
seed, kills the service process with SIGKILL and restarts it on the same port, and kills
PostgreSQL's postmaster with SIGKILL and restarts it (crash recovery replays its WAL) while the
service keeps running and the standby keeps streaming. Clients see refused connections, resets and
503s; their writes are settled afterwards by retrying the same Idempotency-Key. Then every check of
the workload must still hold: nothing acknowledged is lost, nothing is half-written, retries return
the original answers, callers read their own writes; and the standby must have answered reads,
caught up, and hold the primary's ledger.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reliability.figures import Fault
from reliability.processes import OwnPostgres
from reliability.standby import OwnStandby
from reliability.violation import Violation
from reliability.workload import (
    Goal,
    Harness,
    Injector,
    Options,
    Result,
    arguments,
    options_from,
    quiet_logging,
    run,
)

SERVICE = "service kill"
POSTGRES = "postgres kill"
# Faults fall in this part of the run, so the workload runs before the first and after the last.
WINDOW = (0.1, 0.85)
POSTGRES_RECOVERY_SECONDS = 60.0


@dataclass(frozen=True)
class PlannedFault:
    at_seconds: float
    kind: str
    down_seconds: float


def plan_faults(seed: int, seconds: float, service_kills: int, postgres_kills: int) -> list[PlannedFault]:
    """When each fault strikes and how long the victim stays down: one per equal slice of the window."""
    rng = random.Random(f"{seed}:faults")  # noqa: S311 -- a reproducible schedule, not a secret.
    kinds = [SERVICE] * service_kills + [POSTGRES] * postgres_kills
    rng.shuffle(kinds)
    if not kinds:
        return []
    start, end = WINDOW[0] * seconds, WINDOW[1] * seconds
    span = (end - start) / len(kinds)
    planned = []
    for i, kind in enumerate(kinds):
        down = rng.uniform(0.0, 0.5) if kind == SERVICE else rng.uniform(0.2, 1.0)
        planned.append(PlannedFault(start + i * span + rng.uniform(0.0, 0.5) * span, kind, down))
    return planned


def injector(postgres: OwnPostgres, planned: Sequence[PlannedFault]) -> Injector:
    async def inject(harness: Harness) -> None:
        loop = asyncio.get_running_loop()
        for fault in planned:
            await asyncio.sleep(max(0.0, fault.at_seconds - harness.elapsed()))
            struck = harness.runner.now()
            began = loop.time()
            if fault.kind == SERVICE:
                await harness.service.kill()
                await asyncio.sleep(fault.down_seconds)
                await harness.service.start()
                detail = (
                    f"SIGKILL, restarted after {fault.down_seconds:.2f} s, healthy {loop.time() - began:.2f} s later"
                )
            else:
                if harness.standby is not None:
                    await harness.standby.note_primary_crash(harness.service)
                await postgres.kill()
                await asyncio.sleep(fault.down_seconds)
                await postgres.restart()
                answering = loop.time() - began
                ready = await harness.service.wait_ready(POSTGRES_RECOVERY_SECONDS)
                if not ready:
                    harness.violations.append(
                        Violation(
                            "recovery_failed",
                            f"the service was not ready {POSTGRES_RECOVERY_SECONDS:g} s after PostgreSQL restarted",
                        )
                    )
                detail = (
                    f"SIGKILL of the postmaster, restarted after {fault.down_seconds:.2f} s, answering "
                    f"{answering:.2f} s after the kill, service ready {loop.time() - began:.2f} s after it"
                )
            harness.faults.append(Fault(struck, fault.kind, detail, until_seconds=harness.runner.now()))
            harness.runner.writer.note("fault", struck, kind=fault.kind, detail=detail)

    return inject


async def run_crash(
    clients: int,
    seconds: float,
    seed: int,
    service_kills: int,
    postgres_kills: int,
    history: Path | None = None,
    replays: int = 300,
    keep: bool = False,
    goal: Goal | None = None,
    bound_seconds: float | None = None,
    standby: bool = True,
) -> Result:
    """The workload on a PostgreSQL of its own (and a standby of it the service reads from), with
    the planned kills; removed afterwards.

    The kills are planned within `seconds`. With a `goal` the clients go on until it is met (and the
    kills are over), for at most `bound_seconds`: on a busy machine, where a killed service takes
    long to come back, a run of fixed length may not get every operation through.
    """
    options = Options(
        clients=clients,
        seconds=max(seconds, bound_seconds or seconds),
        seed=seed,
        history=history,
        replays=replays,
        keep=keep,
        goal=goal,
    )
    root = Path(tempfile.mkdtemp(prefix="timebank-crash-pg-", dir="/tmp"))
    postgres = OwnPostgres(root)
    replica = OwnStandby(postgres) if standby else None
    reproduce = (
        f"python -m reliability.crash --clients {clients} --seconds {seconds:g} --seed {seed} "
        f"--service-kills {service_kills} --postgres-kills {postgres_kills}" + ("" if standby else " --no-standby")
    )
    try:
        await postgres.start()
        if replica is not None:
            await replica.start()
            options.standby_server_url = replica.server_url
        planned = plan_faults(seed, seconds, service_kills, postgres_kills)
        return await run(
            options, postgres.server_url, injector(postgres, planned), command="crash", reproduce=reproduce
        )
    finally:
        if replica is not None:
            await replica.stop()
        await postgres.stop()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    quiet_logging()
    parser = arguments(__doc__.split("\n\n")[1].strip() if __doc__ else "")
    parser.add_argument("--service-kills", type=int, default=5, help="SIGKILLs of the service (default 5)")
    parser.add_argument("--postgres-kills", type=int, default=1, help="SIGKILLs of the postmaster (default 1)")
    parser.add_argument(
        "--no-standby", action="store_true", help="no streaming standby: the service reads from the primary only"
    )
    args = parser.parse_args(argv)
    options = options_from(args)
    result = asyncio.run(
        run_crash(
            options.clients,
            options.seconds,
            options.seed,
            args.service_kills,
            args.postgres_kills,
            options.history,
            options.replays,
            options.keep,
            standby=not args.no_standby,
        )
    )
    print(result.figures.render())
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
