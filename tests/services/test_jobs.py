"""The job runner (services/jobs.py): leases, heartbeat, take-over, exactly-once results."""
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.extensions import sqlite_immediate_begin
from portal.models import AuditEvent
from portal.models import ImportJob
from portal.models import Job
from portal.models import OutboxMessage
from portal.models import utcnow
from portal.services import import_jobs
from portal.services import jobs
from portal.services import mail
from portal.services.errors import ServiceError
from tests.builders import csv_bytes
from tests.builders import make_user

SEEN: list[tuple[int, int]] = []


def probe(run: jobs.Run) -> None:
    """A test kind: one e-mail per run (the work), then done with a result, one commit."""
    SEEN.append((run.id, run.attempt))
    if run.payload.get("fail") == "service":
        raise ServiceError("The probe says no.")
    if run.payload.get("fail") == "crash":
        raise RuntimeError("boom")
    for step in range(run.payload.get("steps", 0)):
        run.progress(f"Step {step}", step / run.payload["steps"])
        time.sleep(run.payload.get("pause", 0))
    mail.enqueue("password_changed", "probe@example.com", f"Probe {run.id}", name="Probe",
                 url="http://portal.test/x")
    run.done({"ran": run.id})
    db.session.commit()


@pytest.fixture
def kinds(monkeypatch):
    SEEN.clear()
    monkeypatch.setitem(jobs.KINDS, "probe", jobs.Kind("tests.services.test_jobs:probe"))
    token = sqlite_immediate_begin.set(True)  # as in the app: beside its heartbeat thread
    yield
    sqlite_immediate_begin.reset(token)


def queued(**payload) -> int:
    job_id = jobs.enqueue("probe", payload).id
    db.session.commit()  # and no read after it: on SQLite that would hold the lock
    return job_id


def mails() -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage))


def test_a_queued_job_is_run_once_by_the_worker_and_keeps_its_result(app, kinds):
    job_id = queued()
    assert jobs.run_due("worker-1") == 1
    assert jobs.run_due("worker-2") == 0  # nothing is run twice
    job = db.session.get(Job, job_id)
    assert (job.state, job.result, job.attempts, job.lease_until) == ("done", {"ran": job_id}, 1,
                                                                       None)
    assert mails() == 1


def test_a_failing_job_ends_failed_with_its_message_and_writes_nothing(app, kinds):
    said_no, crashed = queued(fail="service"), queued(fail="crash")
    assert jobs.run_due("worker") == 2
    assert db.session.get(Job, said_no).error == "The probe says no."
    assert db.session.get(Job, crashed).error == jobs.FAILED
    assert {db.session.get(Job, i).state for i in (said_no, crashed)} == {"failed"}
    assert mails() == 0


def test_a_dead_holders_job_is_taken_over_after_its_lease_and_applied_once(app, kinds):
    job_id = queued()
    assert jobs.claim("dies") == job_id
    assert jobs.claim("other") is None  # leased: nobody else takes it
    db.session.get(Job, job_id).lease_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert jobs.run_due("survivor") == 1
    assert SEEN == [(job_id, 2)]
    # The first holder was only slow: its late result is refused and its work rolled back.
    late = jobs.Run(id=job_id, kind="probe", owner="dies", payload={}, account_id=None, attempt=1)
    with pytest.raises(jobs.LeaseLost):
        probe(late)
    db.session.rollback()
    assert mails() == 1
    assert db.session.get(Job, job_id).result == {"ran": job_id}


def test_a_job_that_keeps_killing_its_worker_is_given_up(app, kinds):
    job_id = queued()
    for attempt in range(jobs.MAX_ATTEMPTS):
        assert jobs.claim(f"dies-{attempt}") == job_id
        db.session.get(Job, job_id).lease_until = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert jobs.run_due("worker") == 0
    job = db.session.get(Job, job_id)
    assert (job.state, job.error) == ("failed", jobs.INTERRUPTED)


@pytest.mark.config(JOB_LEASE_SECONDS=2)
def test_the_heartbeat_keeps_a_long_job_and_shows_its_progress_everywhere(app, kinds):
    job_id = queued(steps=6, pause=1)  # three leases long
    worker = threading.Thread(target=lambda: _run_due(app, "long"))
    worker.start()
    taken, shown = [], set()
    while worker.is_alive():
        with db.engine.connect() as conn:  # another process's view: the row only
            row = conn.execute(sa.select(Job.phase, Job.lease_owner)
                               .where(Job.id == job_id)).one()
        conn.close()
        if row.phase:
            shown.add(row.phase)
        if row.lease_owner == "long":  # claimed by the worker: nobody else gets it
            taken.append(jobs.claim("thief"))
        time.sleep(0.2)
    worker.join()
    assert taken and set(taken) == {None}
    assert shown and shown <= {f"Step {n}" for n in range(6)}
    assert db.session.get(Job, job_id).state == "done" and mails() == 1


def _run_due(app, name: str) -> None:
    with app.app_context():
        jobs.run_due(name)
        db.session.remove()


def test_the_worker_command_runs_the_due_jobs(app, kinds, runner):
    job_id = queued()
    result = runner.invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "Worker: 1 job run" in result.output
    db.session.rollback()
    assert db.session.get(Job, job_id).state == "done"


def test_an_interrupted_import_is_ended_by_the_worker_and_can_start_again(app, account, kinds):
    upload = import_jobs.upload(account.admin, "people.csv",
                                csv_bytes([("Ana", "ana@example.com", "")]))
    run = jobs.enqueue("import_csv", {"import_job": upload.id, "lines": None, "invite": False},
                       account_id=account.id, here=True)
    upload.state, upload.run_id = "running", run.id
    db.session.commit()
    assert import_jobs.state(upload) == "running"
    # Its process died (on SQLite a holder still running here would count as alive).
    run.lease_until, run.lease_owner = utcnow() - timedelta(seconds=1), "web-gone-1-dead"
    db.session.commit()
    assert import_jobs.state(upload) == "interrupted"  # seen without any worker
    assert jobs.run_due("worker") == 0  # not run again by itself: the admin decides
    db.session.refresh(upload)
    assert (upload.state, upload.error) == ("interrupted", import_jobs.INTERRUPTED)
    assert db.session.get(Job, run.id).state == "failed"
    assert db.session.scalar(sa.select(AuditEvent.action).order_by(AuditEvent.id.desc())
                             ) == "users.import_failed"
    import_jobs.start(account.admin, upload.id, lines=None, invite=False)
    for thread in threading.enumerate():
        if thread.name.startswith("job-"):
            thread.join(30)
    db.session.rollback()
    assert db.session.get(ImportJob, upload.id).state == "done"


@pytest.mark.config(BULK_BACKGROUND_ROWS=3, INVITE_RESEND_MINUTES=0)
def test_resend_invite_to_a_large_selection_runs_as_a_background_job(app, admin, account):
    for n in range(5):
        make_user(account, email=f"waiting{n}@example.com", password=None)
    before = mails()
    response = admin.post("/admin/participants/users/bulk/resend-invite",
                          data={"all_matching": "y", "confirmed": "y"},
                          headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "Resending invitations to 6 selected users in the background" in response.get_data(
        as_text=True)
    for thread in threading.enumerate():
        if thread.name.startswith("job-resend_invites-"):
            thread.join(30)
    db.session.rollback()
    job = db.session.scalar(sa.select(Job).where(Job.kind == "resend_invites"))
    assert job.state == "done", job.error
    assert job.result["summary"].startswith("Invite resent to 5 users; 1 skipped")
    assert mails() == before + 5


@pytest.mark.config(BULK_BACKGROUND_ROWS=3, INVITE_RESEND_MINUTES=0)
def test_a_resend_job_left_by_a_dead_process_is_run_by_the_worker_once(app, account, kinds):
    for n in range(5):
        make_user(account, email=f"waiting{n}@example.com", password=None)
    before = mails()
    job_id = jobs.enqueue("resend_invites", {
        "actor": account.admin.id, "ids": [], "all_matching": True,
        "filter": {"q": "", "group_id": None, "state": None}}, account_id=account.id).id
    db.session.commit()
    assert jobs.claim("dies") == job_id
    db.session.get(Job, job_id).lease_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert jobs.run_due("worker") == 1
    assert jobs.run_due("worker") == 0
    assert db.session.get(Job, job_id).state == "done"
    assert mails() == before + 5
