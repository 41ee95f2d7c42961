"""Alembic's comparison hooks (migrations/env.py and tests/test_migrations.py): each module
that builds objects outside the models' metadata says which of them to leave out, and these
ask every one of them, so no such module needs to know another."""
from portal.models import pg_keys
from portal.models import search


def include_name(name, type_, parent_names) -> bool:
    return search.include_name(name, type_, parent_names)


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    return all(hook(obj, name, type_, reflected, compare_to)
               for hook in (search.include_object, pg_keys.include_object))
