"""The device limit holds under racing sign-ins: threads, two app instances, two processes (T41).

Runs against the same SQLite file, or PostgreSQL when PORTAL_TEST_DATABASE_URL is set.
"""
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from portal import create_app
from portal.extensions import db
from portal.models import Device
from portal.models import User
from portal.services import auth
from portal.services.errors import ServiceError
from tests.builders import PASSWORD
from tests.builders import make_user

ROOT = Path(__file__).resolve().parents[2]
SHARED = ("TESTING", "SECRET_KEY", "DATABASE_URL", "MAIL_SERVER", "MAIL_PORT",
          "ARGON2_TIME_COST", "ARGON2_MEMORY_COST", "ARGON2_PARALLELISM")


def device_states(user_id) -> dict[str | None, int]:
    db.session.commit()
    rows = db.session.execute(
        sa.select(Device.revoked_reason, sa.func.count()).where(Device.user_id == user_id)
        .group_by(Device.revoked_reason)
    )
    return dict(rows.all())


def test_racing_sign_ins_on_two_app_instances_never_exceed_the_limit(app, account):
    member = make_user(account)
    email = member.user.email  # read here: the test's session must not be used from threads
    config = {key: app.config[key] for key in SHARED}
    instances = [create_app(dict(config)) for _ in range(2)]
    per_thread, threads_per_instance = 3, 4
    start = threading.Barrier(len(instances) * threads_per_instance)
    errors = []

    def sign_in_repeatedly(instance, n):
        with instance.app_context():
            start.wait()
            try:
                for i in range(per_thread):
                    client = auth.Client(kind="app", name=f"racer {n}.{i}", app_version="1")
                    auth.log_in(email, PASSWORD, client)
            except Exception as exc:  # noqa: BLE001 (reported below, with its type)
                errors.append(repr(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=sign_in_repeatedly, args=(instance, n))
               for n, instance in enumerate(instances * threads_per_instance)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for instance in instances:
        with instance.app_context():
            db.engine.dispose()
    assert errors == []
    total = len(threads) * per_thread
    assert device_states(member.user_id) == {None: 3, "device_limit": total - 3}


@pytest.mark.config(LOGIN_THROTTLE_AFTER=100)
def test_parallel_wrong_passwords_each_count_exactly_once(app, account):
    """T37 (b): guesses sent at the same moment raise the person's counter by exactly as many."""
    member = make_user(account)
    email = member.user.email
    guesses = 16
    start = threading.Barrier(guesses)
    refused = []

    def guess(n):
        with app.app_context():
            start.wait()
            try:
                auth.log_in(email, f"wrong guess {n}", auth.Client())
            except ServiceError:
                refused.append(n)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(guesses)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    db.session.commit()
    assert len(refused) == guesses
    assert db.session.scalar(sa.select(User.failed_logins).where(User.id == member.user_id)) == guesses


def sign_in_in_this_process(email: str, count: int, start_at: float) -> None:
    """Run in a child process: sign in ``count`` times from ``start_at`` and print the tokens."""
    instance = create_app()
    with instance.app_context():
        time.sleep(max(0.0, start_at - time.time()))
        tokens = [auth.log_in(email, PASSWORD, auth.Client(kind="app", name="child")).token
                  for _ in range(count)]
        db.engine.dispose()
    print(json.dumps(tokens))


def start_process(app, email: str, count: int, start_at: float) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.update({f"PORTAL_{key}": json.dumps(app.config[key]) for key in SHARED})
    code = ("from tests.services.test_device_limit_races import sign_in_in_this_process as run; "
            f"run({email!r}, {count}, {start_at})")
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> list[str]:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_the_fourth_sign_in_in_another_process_logs_out_the_oldest(app, client, account):
    member = make_user(account)
    assert client.login(member.user.email).status_code == 302  # the oldest, a browser
    for _ in range(2):
        auth.sign_in(member.user, auth.Client(kind="app", name="tablet"))
    db.session.commit()
    finish(start_process(app, member.user.email, 1, time.time()))
    response = client.get("/account")
    assert response.status_code == 302
    assert "device limit was reached" in client.get("/login").get_data(as_text=True)


def test_two_processes_racing_sign_ins_never_exceed_the_limit(app, account):
    member = make_user(account)
    db.session.commit()
    start_at = time.time() + 2.5  # both children are up by then and start together
    processes = [start_process(app, member.user.email, 4, start_at) for _ in range(2)]
    tokens = [token for process in processes for token in finish(process)]
    assert len(set(tokens)) == 8
    assert device_states(member.user_id) == {None: 3, "device_limit": 5}
