"""Import jobs: an uploaded CSV held between its preview and its import, run in the background.

The file lives in the database (any app server can preview and run it), belongs to the admin
who uploaded it (anyone else gets 404), and is discarded when it expires or has been imported.
The import itself is ``csv_import.import_csv`` run as an ``import_csv`` background job
(``services/jobs``): the process that received the click runs it under a lease it renews; if
that process dies the lease passes within ``JOB_LEASE_SECONDS`` and the import shows as
interrupted (nothing written: it is one transaction), ready to be started again at once. The page
polls the job for its state and progress.
"""
import unicodedata
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from portal.extensions import db
from portal.models import ImportJob
from portal.models import Membership
from portal.models import utcnow
from portal.services import audit
from portal.services import csv_check
from portal.services import csv_encodings
from portal.services import csv_import
from portal.services import csv_read
from portal.services import jobs
from portal.services import scope
from portal.services.errors import Conflict
from portal.services.errors import NotFound
from portal.services.errors import ServiceError

INTERRUPTED = "The import was interrupted (the process running it stopped) and nothing was written."
FAILED = ("The import failed and nothing was written. Try again; if it fails again, tell your "
          "administrator.")
# States in which the held file may be previewed, changed and started.
STARTABLE = ("uploaded", "failed", "interrupted")


def _display_name(filename: str | None) -> str:
    # Shown only, never used in a path: the last path segment, printable, short.
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    return name[:200] or "upload.csv"


def upload(actor, filename: str | None, data: bytes) -> ImportJob:
    """Check the file as a whole and hold it for its preview; nothing else is written."""
    csv_read.read_table(data, current_app.config["IMPORT_MAX_ROWS"])
    now = utcnow()
    db.session.execute(sa.delete(ImportJob).where(ImportJob.expires_at < now))
    job = ImportJob(
        account_id=actor.account_id,
        membership_id=actor.id,
        filename=_display_name(filename),
        data=data,
        size=len(data),
        expires_at=now + timedelta(hours=current_app.config["IMPORT_KEEP_HOURS"]),
    )
    db.session.add(job)
    db.session.commit()
    return job


def get_job(actor, job_id) -> ImportJob:
    """Return the actor's own job, or NotFound (another account's or another admin's too)."""
    job = scope.get_in_account(ImportJob, job_id, actor)
    if job.membership_id != actor.id:
        raise NotFound()
    return job


def state(job: ImportJob) -> str:
    """Return the job's state as the page shows it: uploaded, expired, running, done, failed,
    interrupted (its run's lease passed: the process running it died; nothing was written)."""
    if job.state == "uploaded" and job.expires_at <= utcnow():
        return "expired"
    if job.state == "running" and not jobs.alive(jobs.get(job.run_id)):
        # The import and its run end in one commit, but they are read in two statements: on
        # PostgreSQL (READ COMMITTED) that commit can land between them, and a run found
        # finished beside an import read as running is one that has just ended. Read the
        # import again after its run: still running now means its holder died.
        db.session.refresh(job)
        if job.state == "running":
            return "interrupted"
    return job.state


def progress(job: ImportJob) -> tuple[str, float] | None:
    """Return (phase, fraction) of a running import, from any process."""
    return jobs.progress(jobs.get(job.run_id))


def preview(actor, job_id) -> tuple[ImportJob, str, csv_check.Preview | None]:
    """Return the job, its state (read once: a lease may pass meanwhile) and, while it waits
    for the admin, what importing it would do."""
    job = get_job(actor, job_id)
    shown = state(job)
    if shown not in STARTABLE or job.data is None:
        return job, shown, None
    return job, shown, csv_check.preview_csv(actor, job.data, read_as=job.read_as,
                                             update=job.update_existing)


def choose(actor, job_id, *, read_as: str | None, update: bool) -> ImportJob:
    """Set how the held file is read (Read as …; None: as its bytes point to) and whether
    people already in the account are updated. An encoding the file cannot be read in is
    refused (ServiceError) and the previous choice kept."""
    job = get_job(actor, job_id)
    if state(job) not in STARTABLE or job.data is None:
        raise ServiceError("This upload can no longer be changed.", status=410)
    if read_as is not None and read_as not in csv_encodings.READ_AS:
        raise ServiceError(f"Choose one of {', '.join(csv_encodings.READ_AS)}.", "read_as")
    csv_read.read_table(job.data, current_app.config["IMPORT_MAX_ROWS"], read_as)
    job.read_as = read_as
    job.update_existing = update
    db.session.commit()
    return job


def download(actor, job_id, which: str) -> tuple[str, bytes]:
    """Return (file name, CSV bytes) of a finished job's rejected rows or report."""
    job = get_job(actor, job_id)
    data = job.rejected_csv if which == "rejected" else job.report_csv
    if state(job) != "done" or data is None:
        raise NotFound()
    stem = job.filename.rsplit(".", 1)[0] or "upload"
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "-" for c in stem)
    return f"{safe[:60]}-{which}.csv", data


def start(actor, job_id, *, lines: list[int] | None, invite: bool) -> ImportJob:
    """Start importing the job's rows (all valid ones, or those on ``lines``) in the background.

    Claimed with one conditional UPDATE, so a double click or a second tab starts it once;
    a failed or interrupted run may be started again at once (the import is all or nothing).
    The run is an ``import_csv`` job leased to this process and run in a thread here.
    """
    job = get_job(actor, job_id)
    if state(job) == "expired":
        raise ServiceError("This upload has expired. Upload the file again.", status=410)
    if lines is not None and not lines:
        raise ServiceError("Select at least one row, or choose Import all.")
    previous = jobs.get(job.run_id)
    interrupted = state(job) == "interrupted"
    run = jobs.enqueue("import_csv", {"import_job": job.id, "lines": lines, "invite": invite},
                       account_id=job.account_id, here=True)
    claimed = db.session.execute(
        sa.update(ImportJob)
        .where(
            ImportJob.id == job.id,
            ImportJob.data.is_not(None),
            sa.or_(
                ImportJob.state.in_(STARTABLE),
                # A run whose process died (its lease passed) may be run again.
                sa.and_(ImportJob.state == "running", ImportJob.run_id == job.run_id,
                        sa.literal(interrupted)),
            ),
        )
        .values(state="running", started_at=utcnow(), invite=invite, error=None, run_id=run.id),
        execution_options={"synchronize_session": False},
    ).rowcount
    if not claimed:
        db.session.rollback()
        raise Conflict("This file is already being imported or was imported.")
    if interrupted and previous is not None and previous.state == "running":
        # Its holder is gone: record it failed now, so nobody ends it later under the new run.
        previous.state, previous.error, previous.finished_at = "failed", jobs.INTERRUPTED, utcnow()
    db.session.commit()
    db.session.refresh(job)
    jobs.run_here(run)
    return job


def run_import(run: jobs.Run) -> None:
    """The ``import_csv`` job: import the held file in one transaction, the job done with it."""
    job = db.session.get(ImportJob, run.payload["import_job"])
    actor = db.session.get(Membership, job.membership_id)
    data = job.data

    def finish(result: csv_import.ImportResult) -> None:
        # In the import's own transaction: the job is done exactly when its rows are in.
        job.state = "done"
        job.result = result.as_dict()
        job.rejected_csv = result.rejected_csv
        job.report_csv = result.report_csv
        job.data = None
        job.finished_at = utcnow()
        run.done({"summary": result.summary()})

    csv_import.import_csv(actor, data, lines=run.payload["lines"], invite=run.payload["invite"],
                          progress=run.progress, on_success=finish, read_as=job.read_as,
                          update=job.update_existing, filename=job.filename)


def import_failed(run: jobs.Run, message: str) -> None:
    """The ``import_csv`` job failed or was interrupted: the import says so (no commit)."""
    job = db.session.get(ImportJob, run.payload["import_job"])
    if job is None or job.run_id != run.id or job.state != "running":
        return  # a newer run took its place
    interrupted = message == jobs.INTERRUPTED
    job.state = "interrupted" if interrupted else "failed"
    job.error = INTERRUPTED if interrupted else FAILED if message == jobs.FAILED else message
    job.finished_at = utcnow()
    actor = db.session.get(Membership, job.membership_id)
    audit.record(actor, "users.import_failed", error=job.error, file=job.filename)
