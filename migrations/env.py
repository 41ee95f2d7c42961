"""Alembic environment for Flask-Migrate: the app's engine and the models' metadata."""
import logging

from alembic import context
from flask import current_app

from portal.models import Base
from portal.models import compare

config = context.config
logger = logging.getLogger("alembic.env")


def run_migrations_offline():
    """Emit SQL for the configured URL without connecting."""
    context.configure(
        url=current_app.config["SQLALCHEMY_DATABASE_URI"],
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=True,
        include_name=compare.include_name,
        include_object=compare.include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Migrate through the app's own engine (so SQLite gets its pragmas)."""

    def skip_empty_revisions(_context, _revision, directives):
        # `flask db migrate` with no model change writes no empty revision file.
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")

    conf_args = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("process_revision_directives", skip_empty_revisions)
    engine = current_app.extensions["migrate"].db.engine
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            include_name=compare.include_name,
            include_object=compare.include_object,
            **conf_args,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
