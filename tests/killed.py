"""Processes that tests kill with SIGKILL at random points (the outbox deliverer, an import).

They are forked from a multiprocessing forkserver that has the portal imported already: a
fresh interpreter costs seconds on a busy machine, a fork of a warm one milliseconds, and the
test process itself (threads: the SMTP server) is never forked. Each child builds its own app
from the config it is given, says "ready" on its pipe, then works until it is killed.
"""
import multiprocessing
import signal

from portal import create_app

# Imported in the forkserver too: building one app there imports everything an app needs, so a
# child's own create_app takes a tenth of a second instead of seconds.
create_app({"TESTING": True, "SECRET_KEY": "warm-up", "DATABASE_URL": "sqlite://"})

_CONTEXT = None


def context():
    """The forkserver context, started once per test run with the portal preloaded."""
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = multiprocessing.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(["tests.killed"])
    return _CONTEXT


def start(target, config: dict, *args):
    """Start ``target(config, pipe, *args)`` in a fresh child; return (process, parent pipe)."""
    parent, child = context().Pipe()
    process = context().Process(target=target, args=(config, child, *args), daemon=True)
    process.start()
    child.close()
    return process, parent


def kill(process) -> None:
    process.kill()  # SIGKILL: no handler, no cleanup, no commit
    process.join(10)
    assert process.exitcode == -signal.SIGKILL, process.exitcode


def deliverer(config: dict, pipe) -> None:
    """Deliver the outbox in batches of 5 and, when nothing is due, poll as ``flask worker``
    does, until SIGKILL: the kill always finds a live deliverer, even when it lands after the
    last message (a deliverer that returned would exit 0 and the kill would not be a kill)."""
    import time

    from portal.extensions import db
    from portal.services import outbox

    app = create_app(config)
    with app.app_context():
        db.session.execute(db.select(1))  # connected before "ready": the kill lands in the work
        db.session.rollback()
        pipe.send("ready")
        while True:
            if not outbox.deliver_due(limit=5).sent:
                time.sleep(0.05)


def importer(config: dict, pipe, actor_id: int, job_id: int) -> None:
    """Start an uploaded CSV's import as the page's Import all does, in this process; tell
    each phase on the pipe as it begins, then wait for the import (or SIGKILL)."""
    import threading

    from portal.extensions import db
    from portal.models import Membership
    from portal.services import csv_import
    from portal.services import import_jobs

    real = csv_import.import_csv

    def traced(*args, progress, **kwargs):
        def told(phase, fraction):
            pipe.send(phase)
            progress(phase, fraction)

        return real(*args, progress=told, **kwargs)

    csv_import.import_csv = traced
    app = create_app(config)
    with app.app_context():
        actor = db.session.get(Membership, actor_id)
        pipe.send("ready")
        import_jobs.start(actor, job_id, lines=None, invite=True)
        db.session.rollback()  # as the request that started it ends
        for thread in threading.enumerate():
            if thread.name.startswith(("job-", "import-job-")):  # the import's own thread
                thread.join()
        pipe.send("done")
