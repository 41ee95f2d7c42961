"""Background jobs: one durable table, each job claimed under a short renewable lease.

- ``enqueue(kind, payload)`` adds a job in the caller's transaction: it exists exactly when the
  change that asked for it is committed. ``here=True`` also leases it to this process, and
  ``run_here(job)`` (after the commit) runs it in a thread: the embedded default, and the web
  process that got the click, need no worker to finish what they started.
- ``flask worker`` calls ``run_due`` in a loop: it claims one due job at a time
  (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises claimers)
  and runs it. A job whose holder died (its lease passed, nobody renewed it) is claimed again
  by a kind that retries, or ends failed as interrupted for one that does not (an import: the
  admin decides whether to run it again).
- While a job runs, a heartbeat renews its lease every third of ``JOB_LEASE_SECONDS`` and
  writes its progress (phase, fraction) to the row, so every process can show the bar.
- A kind's function does its work and calls ``run.done(result)`` before its own single commit:
  the result and ``state = done`` are written with the work, so a job taken over after its
  holder died never applies twice (``done`` raises ``LeaseLost`` if the lease went to another).

A new kind: its function ``run_<kind>(run: Run) -> None`` in the service that owns the work,
one line in ``KINDS`` below, a call to ``enqueue`` where the work is asked for, and its tests.
"""
import importlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from datetime import timedelta
from typing import Any
from typing import Protocol

import sqlalchemy as sa
from flask import Flask
from flask import current_app

from portal.extensions import db
from portal.models import Job
from portal.models import utcnow
from portal.services import leases
from portal.services.errors import ServiceError

log = logging.getLogger(__name__)

FAILED = ("The job failed and nothing was written. Try again; if it fails again, tell your "
          "administrator.")
INTERRUPTED = "Interrupted: the process running it stopped, and nothing was written."
# A retrying kind whose holder died this often is given up (a job that kills its worker).
MAX_ATTEMPTS = 3
# Finished jobs are kept this long (their result and error), then removed by the worker.
KEEP = timedelta(days=7)


class StopFlag(Protocol):
    """What tells a round to end: a ``threading.Event`` or the worker's ``cli.SignalStop``."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class Kind:
    # "module:function" taking a Run: does the work, calls run.done(result), commits once.
    run: str
    # Run again when its holder died; else it ends failed with INTERRUPTED.
    retry: bool = True
    # "module:function" taking (Run, message): its own writes when the job fails or is
    # interrupted, in the transaction that records it (no commit).
    failed: str | None = None


KINDS: dict[str, Kind] = {
    "import_csv": Kind("portal.services.import_jobs:run_import", retry=False,
                       failed="portal.services.import_jobs:import_failed"),
    "resend_invites": Kind("portal.services.invitations:run_resend_invites"),
}


class LeaseLost(Exception):
    """The job's lease went to another worker: this run's work must not be committed."""


# Progress of the jobs running in this process: job id -> (phase, fraction); the heartbeat
# copies it to the row for the other processes.
PROGRESS: dict[int, tuple[str, float]] = {}


@dataclass
class Run:
    """One run of a job, as its kind's function sees it."""

    id: int
    kind: str
    owner: str
    payload: dict[str, Any]
    account_id: int | None
    attempt: int
    result: dict[str, Any] | None = field(default=None)

    def progress(self, phase: str, fraction: float) -> None:
        PROGRESS[self.id] = (phase, fraction)

    def done(self, result: dict[str, Any] | None = None) -> None:
        """Mark the job done in the caller's transaction; LeaseLost if it is no longer ours."""
        finished = db.session.execute(
            sa.update(Job)
            .where(Job.id == self.id, Job.lease_owner == self.owner, Job.state == "running")
            .values(state="done", result=result, lease_until=None, finished_at=utcnow(),
                    phase=None, fraction=None),
            execution_options={"synchronize_session": False},
        ).rowcount
        if finished != 1:
            raise LeaseLost(f"job {self.id} is no longer held by {self.owner}")
        self.result = result


def _resolve(path: str) -> Callable:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def enqueue(kind: str, payload: dict[str, Any], *, account_id: int | None = None,
            here: bool = False) -> Job:
    """Add a job in the caller's transaction (no commit); ``here`` leases it to this process."""
    if kind not in KINDS:
        raise ValueError(f"unknown job kind {kind!r}")
    job = Job(kind=kind, payload=payload, account_id=account_id, state="queued",
              attempts=0, run_after=utcnow())
    if here:
        job.state, job.attempts, job.started_at = "running", 1, utcnow()
        job.lease_owner, job.lease_until = leases.owner_name("web"), leases.until()
    db.session.add(job)
    db.session.flush()
    return job


def run_here(job: Job) -> threading.Thread:
    """Run a job enqueued with ``here=True`` (and committed) in a thread of this process."""
    job_id, kind, owner = job.id, job.kind, job.lease_owner
    # Reading them may have begun a transaction: end it, or on SQLite it holds the lock the
    # job needs until this request ends.
    db.session.commit()
    thread = threading.Thread(
        target=_run_in_app,
        args=(current_app._get_current_object(), job_id, owner),
        name=f"job-{kind}-{job_id}",
        daemon=True,
    )
    thread.start()
    return thread


def _run_in_app(app: Flask, job_id: int, owner: str) -> None:
    with app.app_context():
        try:
            run(job_id, owner)
        finally:
            db.session.remove()


def _retrying() -> list[str]:
    return [name for name, kind in KINDS.items() if kind.retry]


def claim(worker: str) -> int | None:
    """Lease one due job to ``worker`` and commit; return its id (None: nothing is due)."""
    now = utcnow()
    due = (
        sa.select(Job.id)
        .where(sa.or_(
            sa.and_(Job.state == "queued", Job.run_after <= now),
            sa.and_(Job.state == "running", Job.lease_until < now, Job.kind.in_(_retrying()),
                    Job.attempts < MAX_ATTEMPTS),
        ))
        .order_by(Job.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    job_id = db.session.scalar(due)
    if job_id is not None:
        db.session.execute(
            sa.update(Job).where(Job.id == job_id)
            .values(state="running", lease_owner=worker, lease_until=now + leases.duration(),
                    attempts=Job.attempts + 1, started_at=now, phase=None, fraction=None),
            execution_options={"synchronize_session": False},
        )
    db.session.commit()
    return job_id


def run(job_id: int, owner: str) -> None:
    """Run one job this owner holds to its end: done, failed, or given up (lease lost)."""
    job = db.session.get(Job, job_id)
    if job is None or job.lease_owner != owner or job.state != "running":
        db.session.rollback()
        return
    kind = KINDS[job.kind]
    this = Run(id=job.id, kind=job.kind, owner=owner, payload=dict(job.payload or {}),
               account_id=job.account_id, attempt=job.attempts)
    db.session.commit()
    PROGRESS[job_id] = ("Starting", 0.0)
    try:
        with leases.Heartbeat(_renew(job_id, owner)):
            _resolve(kind.run)(this)
    except LeaseLost:
        db.session.rollback()
        log.warning("job %s (%s): lease lost, its work rolled back", job_id, this.kind)
    except Exception as error:  # the job must end failed, whatever went wrong
        db.session.rollback()
        if isinstance(error, ServiceError):
            message = error.message
        else:
            message = FAILED
            log.exception("job %s (%s) failed", job_id, this.kind)
        _end_failed(this, message)
    finally:
        PROGRESS.pop(job_id, None)


def _renew(job_id: int, owner: str):
    table = Job.__table__

    def renew(conn: sa.Connection, lease_until) -> None:
        phase, fraction = PROGRESS.get(job_id, (None, None))
        conn.execute(sa.update(table)
                     .where(table.c.id == job_id, table.c.lease_owner == owner,
                            table.c.state == "running")
                     .values(lease_until=lease_until, phase=phase, fraction=fraction))

    return renew


def _end_failed(run: Run, message: str) -> None:
    """Record the job failed (if still ours) with the kind's own writes, and commit."""
    failed = db.session.execute(
        sa.update(Job)
        .where(Job.id == run.id, Job.lease_owner == run.owner, Job.state == "running")
        .values(state="failed", error=message, lease_until=None, finished_at=utcnow()),
        execution_options={"synchronize_session": False},
    ).rowcount
    hook = KINDS[run.kind].failed
    if failed and hook:
        _resolve(hook)(run, message)
    db.session.commit()


def reap() -> int:
    """End the jobs whose holder died and that are not run again (interrupted), and remove
    finished jobs older than KEEP; commit; return how many were ended."""
    now = utcnow()
    expired = db.session.execute(
        sa.select(Job.id, Job.kind, Job.lease_owner, Job.payload, Job.account_id, Job.attempts)
        .where(Job.state == "running", Job.lease_until < now,
               sa.or_(Job.kind.not_in(_retrying()), Job.attempts >= MAX_ATTEMPTS))
        .with_for_update(skip_locked=True)
    ).all()
    for row in expired:
        if leases.holder_alive(row.lease_owner):
            continue
        _end_failed(Run(id=row.id, kind=row.kind, owner=row.lease_owner,
                        payload=dict(row.payload or {}), account_id=row.account_id,
                        attempt=row.attempts), INTERRUPTED)
    db.session.execute(sa.delete(Job).where(Job.state.in_(("done", "failed")),
                                            Job.finished_at < now - KEEP))
    db.session.commit()
    return len(expired)


def run_due(worker: str, stop: StopFlag | None = None) -> int:
    """The worker's round: end interrupted jobs, then claim and run due jobs one at a time
    until none is due (or ``stop`` is set); return how many ran."""
    reap()
    ran = 0
    while not (stop is not None and stop.is_set()):
        job_id = claim(worker)
        if job_id is None:
            break
        run(job_id, worker)
        ran += 1
    return ran


def get(job_id: int | None) -> Job | None:
    return db.session.get(Job, job_id) if job_id is not None else None


def alive(job: Job | None) -> bool:
    """Tell whether a job is queued, or running under a lease that has not passed (on SQLite:
    or whose holder still runs, its heartbeat held up by the job's own write transaction)."""
    if job is None:
        return False
    if job.state == "queued":
        return True
    if job.state != "running":
        return False
    return ((job.lease_until is not None and job.lease_until >= utcnow())
            or leases.holder_alive(job.lease_owner))


def progress(job: Job | None) -> tuple[str, float] | None:
    """(phase, fraction) of a running job: this process's own, else what its holder wrote."""
    if job is None:
        return None
    if job.id in PROGRESS:
        return PROGRESS[job.id]
    if job.phase is not None and job.fraction is not None:
        return job.phase, job.fraction
    return None
