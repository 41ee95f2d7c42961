"""`make run`'s scripts/serve.sh: gunicorn and the background worker side by side, stopped together."""
import os
import re
import signal
import subprocess
import sys

import pytest

from tests.deploy.processes import ROOT
from tests.deploy.processes import alive
from tests.deploy.processes import free_port
from tests.deploy.processes import healthz
from tests.deploy.processes import stop_group
from tests.deploy.processes import wait_for


class Served:
    """scripts/serve.sh running in its own process group, its output in a file."""

    def __init__(self, tmp_path, database_url, mail_port):
        self.port = free_port()
        self.log = tmp_path / "serve.log"
        env = dict(
            os.environ,
            PORTAL_DATABASE_URL=database_url,
            PORTAL_SECRET_KEY="serve test key",
            PORTAL_BASE_URL=f"http://127.0.0.1:{self.port}",
            WEB_CONCURRENCY="1",
            GUNICORN_THREADS="2",
        )
        env.pop("PORTAL_MAIL_SERVER", None)
        if mail_port:
            env.update(PORTAL_MAIL_SERVER="127.0.0.1", PORTAL_MAIL_PORT=str(mail_port))
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                ["bash", "scripts/serve.sh", sys.prefix, "127.0.0.1", str(self.port)],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            first = wait_for(lambda: re.search(r"gunicorn \(pid (\d+)\).*worker \(pid (\d+)\)",
                                               self.output()), 60, "serve.sh names its processes",
                             self.output)
        except AssertionError:
            stop_group(self.process)
            raise
        self.server, self.worker = int(first[1]), int(first[2])

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def healthz(self):
        return healthz(self.port)

    def finish(self, seconds: float = 40) -> int | None:
        """serve.sh's exit code, or None when it has not ended within ``seconds``."""
        try:
            return self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            return None
        finally:
            stop_group(self.process)


@pytest.fixture
def served(tmp_path, test_databases, smtp_session):
    started = []

    def start(mail: bool) -> Served:
        started.append(Served(tmp_path, test_databases.fresh(tmp_path),
                              smtp_session[0].port if mail else None))
        return started[-1]

    yield start
    for s in started:
        stop_group(s.process)


def test_ctrl_c_stops_gunicorn_and_the_worker_cleanly(served):
    s = served(mail=True)
    assert wait_for(s.healthz, 60, "/healthz answers", s.output) == \
        {"database": "ok", "status": "ok"}
    wait_for(lambda: "Worker: running jobs and delivering mail every" in s.output(), 60,
             "the worker is in its loop", s.output)
    assert alive(s.worker), s.output()

    os.killpg(s.process.pid, signal.SIGINT)  # what the terminal sends the whole group on Ctrl-C

    assert s.finish() == 0, s.output()
    assert not alive(s.server) and not alive(s.worker)
    out = s.output()
    assert "Using worker: gthread" in out
    assert "Shutting down: Master" in out
    assert "Worker: stopped." in out  # the worker left between rounds, not killed in one
    assert out.rstrip().endswith("serve.sh: stopped")
    assert "Traceback" not in out


def test_term_stops_both_and_without_a_mail_server_the_worker_still_runs_jobs(served):
    s = served(mail=False)
    wait_for(lambda: "No SMTP server configured" in s.output(), 60, "the worker says so",
             s.output)
    assert wait_for(s.healthz, 60, "/healthz answers", s.output)["status"] == "ok"
    assert alive(s.worker), s.output()  # it runs the jobs: it does not end for lack of mail

    s.process.send_signal(signal.SIGTERM)  # systemd or `kill`: the script alone

    assert s.finish() == 0, s.output()
    assert not alive(s.server) and not alive(s.worker)
    assert "Worker: stopped." in s.output()
    assert "Shutting down: Master" in s.output()
    assert "Traceback" not in s.output()
