"""Short renewable leases: what a worker holds, renewed by its heartbeat while it lives.

A worker claims rows (jobs, outbox messages) with ``lease_until = now + JOB_LEASE_SECONDS`` and
its name as owner; a ``Heartbeat`` thread renews every lease of that owner every third of the
lease, each time in a short transaction of its own. A worker that dies stops renewing, so its
rows are due again within one lease (a minute at most by default), never after a fixed long
timeout. Times are the workers' clocks (UTC): keep the hosts of a scaled-out deployment in NTP.
"""
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from portal.extensions import db
from portal.models import utcnow

log = logging.getLogger(__name__)


def duration() -> timedelta:
    """How long a claim lives without being renewed (``JOB_LEASE_SECONDS``)."""
    return timedelta(seconds=float(current_app.config["JOB_LEASE_SECONDS"]))


def until() -> datetime:
    """The end of a lease taken or renewed now."""
    return utcnow() + duration()


def owner_name(role: str = "worker") -> str:
    """A name no other process has: host, process id, a random tail."""
    return f"{role}-{socket.gethostname()[:30]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def holder_alive(owner: str | None) -> bool:
    """On SQLite, tell whether the process named in a lease still runs on this host.

    SQLite serves one host, and a long write transaction of the work itself (an import holds
    the only write lock) keeps its heartbeat from renewing the lease: a passed lease then only
    means "dead" when its process is gone. On PostgreSQL the heartbeat always gets through,
    so a passed lease is the answer (False here).
    """
    if owner is None or db.engine.dialect.name != "sqlite":
        return False
    head, pid, _tail = (owner.rsplit("-", 2) + ["", ""])[:3]
    host = head.split("-", 1)[-1]
    if not pid.isdigit() or host != socket.gethostname()[:30]:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Heartbeat:
    """Run ``renew(connection, lease_until)`` every third of the lease until stopped.

    Each renewal is its own transaction on its own connection, so it never waits for the work
    the lease covers. On SQLite a long write transaction of the work itself (an import) holds
    the only write lock: the renewal then waits and is retried, while no other process can
    claim anything either (claiming needs that lock too).
    """

    def __init__(self, renew: Callable[[sa.Connection, datetime], None]):
        self.renew = renew
        self.engine = db.engine
        self.lease = duration()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)

    def _beat(self) -> None:
        interval = self.lease.total_seconds() / 3
        while not self.stopped.wait(interval):
            try:
                with self.engine.begin() as conn:
                    self.renew(conn, utcnow() + self.lease)
            except sa.exc.OperationalError as error:  # locked or unreachable: try next beat
                log.warning("lease renewal failed: %s", error)

    def __enter__(self) -> "Heartbeat":
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stopped.set()
        self.thread.join()
