"""Import jobs: an uploaded CSV held between its preview and its import, run in the background.

The file lives in the database (any app server can preview and run it), belongs to the admin
who uploaded it (anyone else gets 404), and is discarded when it expires or has been imported.
The import itself is ``csv_import.import_csv`` in a thread of the process that received the
request, with its own app context; the page polls the job for its state.
"""
import logging
import threading
import unicodedata
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask
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
from portal.services import scope
from portal.services.errors import Conflict
from portal.services.errors import NotFound
from portal.services.errors import ServiceError

log = logging.getLogger(__name__)
# A running job whose process died (restart, kill) never finishes; after this it shows failed.
STALE = timedelta(minutes=15)
# Progress of the imports running in this process: job id -> (phase, fraction done). Other
# processes of a scaled-out deployment show "running" without the bar.
PROGRESS: dict[int, tuple[str, float]] = {}


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
    """Return the job's state as the page shows it: uploaded, expired, running, done, failed."""
    now = utcnow()
    if job.state == "uploaded" and job.expires_at <= now:
        return "expired"
    if job.state == "running" and job.started_at and now - job.started_at > STALE:
        return "failed"
    return job.state


def progress(job: ImportJob) -> tuple[str, float] | None:
    """Return (phase, fraction) of a job running in this process, if known."""
    return PROGRESS.get(job.id)


def preview(actor, job_id) -> tuple[ImportJob, csv_check.Preview | None]:
    """Return the job and, while it waits for the admin, what importing it would do."""
    job = get_job(actor, job_id)
    if state(job) not in ("uploaded", "failed") or job.data is None:
        return job, None
    return job, csv_check.preview_csv(actor, job.data, read_as=job.read_as,
                                      update=job.update_existing)


def choose(actor, job_id, *, read_as: str | None, update: bool) -> ImportJob:
    """Set how the held file is read (Read as …; None: as its bytes point to) and whether
    people already in the account are updated. An encoding the file cannot be read in is
    refused (ServiceError) and the previous choice kept."""
    job = get_job(actor, job_id)
    if state(job) not in ("uploaded", "failed") or job.data is None:
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
    a failed or interrupted run may be started again (the import is all or nothing).
    """
    job = get_job(actor, job_id)
    if state(job) == "expired":
        raise ServiceError("This upload has expired. Upload the file again.", status=410)
    if lines is not None and not lines:
        raise ServiceError("Select at least one row, or choose Import all.")
    now = utcnow()
    claimed = db.session.execute(
        sa.update(ImportJob)
        .where(
            ImportJob.id == job.id,
            ImportJob.data.is_not(None),
            sa.or_(
                ImportJob.state.in_(("uploaded", "failed")),
                # A run whose process died may be run again.
                sa.and_(ImportJob.state == "running", ImportJob.started_at < now - STALE),
            ),
        )
        .values(state="running", started_at=now, invite=invite, error=None),
        execution_options={"synchronize_session": False},
    ).rowcount
    if not claimed:
        raise Conflict("This file is already being imported or was imported.")
    db.session.commit()
    PROGRESS[job.id] = ("Starting", 0.0)
    worker = threading.Thread(
        target=_run,
        args=(current_app._get_current_object(), job.id, lines, invite),
        name=f"import-job-{job.id}",
        daemon=True,
    )
    worker.start()
    db.session.refresh(job)
    return job


def _run(app: Flask, job_id: int, lines: list[int] | None, invite: bool) -> None:
    """Run one claimed job to its end (done or failed), in its own app context."""
    with app.app_context():
        try:
            job = db.session.get(ImportJob, job_id)
            actor = db.session.get(Membership, job.membership_id)
            data = job.data

            def report(phase: str, fraction: float) -> None:
                PROGRESS[job_id] = (phase, fraction)

            def finish(result: csv_import.ImportResult) -> None:
                # In the import's own transaction: the job is done exactly when its rows are in.
                job.state = "done"
                job.result = result.as_dict()
                job.rejected_csv = result.rejected_csv
                job.report_csv = result.report_csv
                job.data = None
                job.finished_at = utcnow()

            csv_import.import_csv(actor, data, lines=lines, invite=invite, progress=report,
                                  on_success=finish, read_as=job.read_as,
                                  update=job.update_existing, filename=job.filename)
        except Exception as error:  # the job must end failed, whatever went wrong
            db.session.rollback()
            message = error.message if isinstance(error, ServiceError) else (
                "The import failed and nothing was written. Try again; if it fails again, "
                "tell your administrator.")
            if not isinstance(error, ServiceError):
                log.exception("import job %s failed", job_id)
            _fail(job_id, message)
        finally:
            PROGRESS.pop(job_id, None)
            db.session.remove()


def _fail(job_id: int, message: str) -> None:
    job = db.session.get(ImportJob, job_id)
    job.state = "failed"
    job.error = message
    job.finished_at = utcnow()
    actor = db.session.get(Membership, job.membership_id)
    audit.record(actor, "users.import_failed", error=message, file=job.filename)
    db.session.commit()
