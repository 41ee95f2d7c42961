"""An import's state as its page polls it: the import and its run are read in two statements.

On PostgreSQL (READ COMMITTED) the run's end may be committed between them: an import read as
running beside a run read as done once showed "The import was interrupted" for an import that
had just finished (tests/services/test_import_interrupted.py and tests/web/test_csv.py failed
so about once in four runs of tests/deploy plus those files on PostgreSQL).
"""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import ImportJob
from portal.models import Job
from portal.models import utcnow
from portal.services import import_jobs
from portal.services import jobs
from tests.builders import csv_bytes
from tests.web.test_csv import uploaded


def running_import(admin) -> tuple[int, int]:
    """An uploaded import whose run this process holds (ids of the import and its run)."""
    import_id = uploaded(admin, csv_bytes([("Ana", "ana@example.com", "")]))
    run = jobs.enqueue("import_csv", {"import_job": import_id, "lines": None, "invite": False},
                       account_id=admin.actor.account_id, here=True)
    db.session.get(ImportJob, import_id).state = "running"
    db.session.get(ImportJob, import_id).run_id = run.id
    db.session.commit()
    return import_id, run.id


@pytest.mark.database("postgresql")
def test_an_import_that_ends_between_its_two_reads_is_done_not_interrupted(
        app, admin, monkeypatch):
    import_id, run_id = running_import(admin)
    job = db.session.get(ImportJob, import_id)  # the page read the import: running
    assert job.state == "running"
    real_get = jobs.get

    def run_ends_then_get(job_id):
        # The import's thread commits its end (run and import together) on its own connection.
        with db.engine.begin() as conn:
            conn.execute(sa.update(Job).where(Job.id == run_id)
                         .values(state="done", lease_until=None, finished_at=utcnow()))
            conn.execute(sa.update(ImportJob).where(ImportJob.id == import_id)
                         .values(state="done", data=None, finished_at=utcnow()))
        monkeypatch.setattr(jobs, "get", real_get)
        return real_get(job_id)

    monkeypatch.setattr(jobs, "get", run_ends_then_get)
    assert import_jobs.state(job) == "done"


def test_an_import_whose_run_lost_its_holder_is_still_interrupted(app, admin):
    import_id, run_id = running_import(admin)
    db.session.get(Job, run_id).lease_until = utcnow() - timedelta(seconds=1)
    db.session.get(Job, run_id).lease_owner = "web-gone-1-dead"  # no process of this host
    db.session.commit()
    assert import_jobs.state(db.session.get(ImportJob, import_id)) == "interrupted"
    html = admin.get(f"/admin/participants/users/import/{import_id}",
                     headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "The import was interrupted" in html and "Import all" in html
