"""deploy/: the systemd units pass `systemd-analyze verify`; compose.yaml parses and is complete."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from portal.config import DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("portal*.*"))


def test_the_units_are_the_server_the_worker_and_a_daily_purge():
    assert [u.name for u in UNITS] == [
        "portal-purge.service", "portal-purge.timer", "portal-worker.service", "portal.service",
    ]
    text = {u.name: u.read_text() for u in UNITS}
    assert "ExecStart=/opt/portal/.venv/bin/gunicorn " in text["portal.service"]
    assert "ExecStartPre=/opt/portal/.venv/bin/flask --app wsgi db upgrade" in text["portal.service"]
    assert "wsgi worker" in text["portal-worker.service"]
    assert re.search(r"^ExecStart=\S+/flask --app wsgi purge$", text["portal-purge.service"], re.M)
    assert re.search(r"^OnCalendar=\*-\*-\* 03:00:00$", text["portal-purge.timer"], re.M)
    for name in ("portal.service", "portal-worker.service", "portal-purge.service"):
        assert "EnvironmentFile=/etc/portal/portal.env" in text[name], name
        assert "User=portal" in text[name], name


needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (Debian package systemd; make test-deps installs it)",
)


@needs_systemd_analyze
def test_systemd_analyze_verifies_the_units(tmp_path):
    # verify checks that each command exists: point the units at this checkout's venv.
    for unit in UNITS:
        text = unit.read_text().replace("/opt/portal/.venv", sys.prefix)
        (tmp_path / unit.name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *sorted(str(p) for p in tmp_path.iterdir())],
        capture_output=True, text=True, timeout=60,
    )
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if "portal" in line]
    assert (result.returncode, complaints) == (0, [])


@needs_systemd_analyze
def test_systemd_analyze_would_notice_a_broken_unit(tmp_path):
    broken = UNITS[0].read_text().replace(".venv/bin/flask", ".venv/bin/no-such-command")
    (tmp_path / UNITS[0].name).write_text(broken)
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / UNITS[0].name)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "no-such-command" in result.stderr


def test_compose_runs_postgresql_the_app_and_the_worker_from_one_image():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"db", "migrate", "app", "worker"}
    assert services["db"]["image"].startswith("postgres:")
    assert "healthcheck" in services["db"]
    app, worker, migrate = services["app"], services["worker"], services["migrate"]
    assert app["command"][0] == "gunicorn"
    assert worker["command"] == ["flask", "--app", "wsgi", "worker"]
    assert migrate["command"] == ["flask", "--app", "wsgi", "db", "upgrade"]
    for service in (app, worker, migrate):
        assert service["image"] == "participants-portal"
        assert (ROOT / "deploy" / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        assert service["environment"]["PORTAL_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "@db/portal" in service["environment"]["PORTAL_DATABASE_URL"]
        assert "PORTAL_SECRET_KEY" in service["environment"]
    assert migrate["depends_on"] == {"db": {"condition": "service_healthy"}}
    for service in (app, worker):
        assert service["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    # A worker with no mail server ends with exit 0: it must not be restarted in a loop.
    assert worker["restart"] == "on-failure"


def test_the_image_installs_the_hash_checked_lock():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "pip install --no-cache-dir --require-hashes -r requirements.lock" in dockerfile
    assert "--no-deps -e ." in dockerfile
    for copied in re.findall(r"^COPY (.+) \S+$", dockerfile, re.M):
        for path in copied.split():
            assert (ROOT / path).exists(), path


def test_the_example_settings_are_real_settings():
    names = re.findall(r"^#? ?(PORTAL_[A-Z0-9_]+)=", (DEPLOY / "portal.env.example").read_text(), re.M)
    assert names
    assert [n for n in names if n.removeprefix("PORTAL_") not in DEFAULTS] == []
