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
    """Deliver the outbox in batches of 5 until nothing is due (or SIGKILL)."""
    from portal.extensions import db
    from portal.services import outbox

    app = create_app(config)
    with app.app_context():
        db.session.execute(db.select(1))  # connected before "ready": the kill lands in the work
        db.session.rollback()
        pipe.send("ready")
        while outbox.deliver_due(limit=5).sent:
            pass
        pipe.send("done")
