"""The Alembic chain builds the schema, and it agrees with the models."""
import os
import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade
from flask_migrate import upgrade

from portal import create_app
from portal.extensions import db
from portal.models import Base
from portal.models import compare
from tests.conftest import TEST_CONFIG


@pytest.fixture
def empty_database_url(tmp_path):
    server = os.environ.get("PORTAL_TEST_DATABASE_URL")
    if not server:
        yield f"sqlite:///{tmp_path / 'migrated.db'}"
        return
    url = sa.engine.make_url(server)
    name = f"portal_migrations_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_upgrade_builds_a_schema_that_matches_the_models(empty_database_url):
    app = create_app(dict(TEST_CONFIG, DATABASE_URL=empty_database_url))
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"include_name": compare.include_name,
                                                           "include_object": compare.include_object})
            diff = compare_metadata(context, Base.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
        downgrade(revision="base")
        assert sa.inspect(db.engine).get_table_names() == ["alembic_version"]
        db.engine.dispose()
