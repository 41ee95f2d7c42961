"""Per-address rate limits count across gunicorn processes when PORTAL_RATELIMIT_STORAGE_URI is
redis:// (Debian's redis-server, started here): a sign-in flood spread over two processes is
throttled at the documented 30 attempts a minute. (With memory://, the default, the same flood
of 34 is not throttled at all: each process counts its own 17.)"""
import http.cookiejar
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.deploy.processes import ROOT
from tests.deploy.processes import free_port
from tests.deploy.processes import healthz
from tests.deploy.processes import stop_group
from tests.deploy.processes import wait_for

SIGN_IN_LIMIT = 30  # per minute and address: portal/auth/views.py, README "Security notes"


@pytest.fixture(scope="module")
def redis_url():
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (Debian package redis-server; make test-deps "
                    "installs it)")
    import redis

    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    client = redis.Redis(port=port)

    def ready():
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    try:
        wait_for(ready, 60, "redis-server answers")
        yield f"redis://127.0.0.1:{port}"
    finally:
        client.close()
        stop_group(process)


@pytest.fixture
def two_servers(tmp_path, test_databases):
    """Start two gunicorn processes on one database with the given limit storage."""
    started = []

    def start(storage: str) -> list[int]:
        url = test_databases.fresh(tmp_path)
        ports = [free_port(), free_port()]
        logs = [tmp_path / f"gunicorn-{port}.log" for port in ports]
        for port, log in zip(ports, logs, strict=True):
            env = dict(os.environ, PORTAL_DATABASE_URL=url, PORTAL_SECRET_KEY="one key for both",
                       PORTAL_RATELIMIT_STORAGE_URI=storage, WEB_CONCURRENCY="1",
                       GUNICORN_THREADS="2")
            with log.open("wb") as out:
                started.append(subprocess.Popen(
                    [f"{sys.prefix}/bin/gunicorn", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
                    cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True,
                ))
        for port in ports:
            wait_for(lambda p=port: healthz(p), 90, f"gunicorn on {port} answers",
                     lambda: "\n".join(log.read_text(errors="replace") for log in logs))
        return ports

    yield start
    for process in started:
        stop_group(process)


def sign_in_flood(ports: list[int], attempts: int) -> list[int]:
    """Failed sign-ins alternating between the processes, one browser (cookie) for all."""
    browser = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with browser.open(f"http://127.0.0.1:{ports[0]}/login", timeout=10) as response:
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', response.read().decode())[1]
    statuses = []
    for i in range(attempts):
        form = urllib.parse.urlencode({"csrf_token": token, "email": f"nobody{i}@example.com",
                                       "password": "not the password"}).encode()
        try:
            with browser.open(f"http://127.0.0.1:{ports[i % 2]}/login", form, timeout=10) as r:
                statuses.append(r.status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)
    return statuses


def test_a_sign_in_flood_over_two_processes_is_throttled_at_the_limit(redis_url, two_servers):
    statuses = sign_in_flood(two_servers(redis_url), SIGN_IN_LIMIT + 4)
    assert 429 not in statuses[:SIGN_IN_LIMIT], statuses
    assert statuses[SIGN_IN_LIMIT:] == [429] * 4

