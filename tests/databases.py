"""Test databases: a fresh SQLite file per test, or a per-run PostgreSQL database; and the
PostgreSQL server a test of PostgreSQL's own behaviour uses in the SQLite run (a throw-away
cluster from .ci/pg.sh), so that it runs in both CI runs instead of skipping in one."""
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import sqlalchemy as sa

from portal.models import Base


class SQLiteDatabases:
    """Build the schema once into a template file; each test gets a copy (milliseconds)."""

    def __init__(self, root: Path):
        self.template = root / "template.db"
        engine = sa.create_engine(f"sqlite:///{self.template}")
        Base.metadata.create_all(engine)
        engine.dispose()

    def fresh(self, directory: Path) -> str:
        target = directory / "portal.db"
        shutil.copyfile(self.template, target)
        return f"sqlite:///{target}"

    def close(self) -> None:
        pass


class PostgresDatabases:
    """One database per test run on the server named by PORTAL_TEST_DATABASE_URL."""

    def __init__(self, server_url: str):
        self.server = sa.engine.make_url(server_url)
        self.name = f"portal_test_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(self.server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        admin.dispose()
        self.url = self.server.set(database=self.name).render_as_string(hide_password=False)
        self.engine = sa.create_engine(self.url)
        Base.metadata.create_all(self.engine)
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        self.truncate = sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")

    def fresh(self, directory: Path) -> str:
        with self.engine.begin() as conn:
            conn.execute(self.truncate)
        return self.url

    def close(self) -> None:
        self.engine.dispose()
        admin = sa.create_engine(self.server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        admin.dispose()


ROOT = Path(__file__).resolve().parents[1]


def pg_sh(script: str, env: dict | None = None) -> str:
    """Run ``script`` after sourcing .ci/pg.sh; its output (stderr too, when it fails)."""
    done = subprocess.run(["bash", "-c", f"source .ci/pg.sh && {script}"], cwd=ROOT,
                          env=dict(os.environ, **(env or {})), capture_output=True, text=True,
                          timeout=180)
    if done.returncode:
        raise RuntimeError(f".ci/pg.sh: {script!r} exited {done.returncode}:\n"
                           f"{done.stdout}\n{done.stderr}")
    return done.stdout


class PostgresServer:
    """The server PORTAL_TEST_DATABASE_URL names, or a throw-away cluster started here."""

    def __init__(self):
        self.cluster = None
        self.url = os.environ.get("PORTAL_TEST_DATABASE_URL")
        if not self.url:
            out = pg_sh('pg_start >/dev/null && echo "$PG_URL|$PG_DIR|$PG_USER|$PG_BIN"')
            self.url, *rest = out.strip().splitlines()[-1].split("|")
            self.cluster = dict(zip(("PG_DIR", "PG_USER", "PG_BIN"), rest, strict=True))

    def close(self) -> None:
        if self.cluster:
            pg_sh("pg_stop >/dev/null", self.cluster)
            self.cluster = None


def from_environment(root: Path):
    url = os.environ.get("PORTAL_TEST_DATABASE_URL")
    return PostgresDatabases(url) if url else SQLiteDatabases(root)
