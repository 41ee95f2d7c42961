"""Last seen per account: memberships.sort_last_seen is the activity in that account only

Until now the triggers copied the person's last activity anywhere (users.last_seen_at) onto
every membership, so an account saw, and sorted by, what its people did in other accounts.
The sign-in service now writes each membership's own; the triggers keep only name and e-mail.
People in several accounts get the last activity of a session in that account (devices).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 21:20:00

"""
from alembic import op

from portal.models import search

# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = ("users_sort_keys", "memberships_sort_keys")
PG_FUNCTIONS = ("user_search_update()", "memberships_sort_keys()")

# Only people in more than one account saw another account's activity.
PER_ACCOUNT = """UPDATE memberships SET sort_last_seen = (
        SELECT max(devices.last_seen_at) FROM devices
        WHERE devices.user_id = memberships.user_id
          AND devices.account_id = memberships.account_id)
    WHERE user_id IN (SELECT user_id FROM memberships GROUP BY user_id HAVING count(*) > 1)"""

OLD_SQLITE = [
    """CREATE TRIGGER memberships_sort_keys AFTER INSERT ON memberships
        WHEN NEW.sort_name IS NULL BEGIN
        UPDATE memberships SET
            sort_name = (SELECT lower(name) FROM users WHERE id = NEW.user_id),
            sort_email = (SELECT email FROM users WHERE id = NEW.user_id),
            sort_last_seen = (SELECT last_seen_at FROM users WHERE id = NEW.user_id)
        WHERE id = NEW.id;
    END""",
    """CREATE TRIGGER users_sort_keys AFTER UPDATE OF name, email, last_seen_at ON users BEGIN
        UPDATE memberships SET sort_name = lower(NEW.name), sort_email = NEW.email,
            sort_last_seen = NEW.last_seen_at
        WHERE user_id = NEW.id;
    END""",
]
OLD_POSTGRESQL = [
    """CREATE OR REPLACE FUNCTION user_search_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE user_search s SET body = lower(n.name) || ' ' || n.email
        FROM new_users n
        WHERE s.user_id = n.id AND s.body IS DISTINCT FROM lower(n.name) || ' ' || n.email;
        UPDATE memberships m SET sort_name = lower(n.name), sort_email = n.email,
            sort_last_seen = n.last_seen_at
        FROM new_users n
        WHERE m.user_id = n.id AND (m.sort_name IS DISTINCT FROM lower(n.name)
            OR m.sort_email IS DISTINCT FROM n.email
            OR m.sort_last_seen IS DISTINCT FROM n.last_seen_at);
        RETURN NULL;
    END $$""",
    """CREATE OR REPLACE FUNCTION memberships_sort_keys() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        SELECT lower(name), email, last_seen_at
        INTO NEW.sort_name, NEW.sort_email, NEW.sort_last_seen
        FROM users WHERE id = NEW.user_id;
        RETURN NEW;
    END $$""",
]


def _statements(names, statements):
    return [s for s in statements if any(name in s for name in names)]


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in SQLITE_TRIGGERS:
            bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
        for statement in _statements([f"TRIGGER {n} " for n in SQLITE_TRIGGERS], search.SQLITE):
            bind.exec_driver_sql(statement)
    else:
        names = [f"REPLACE FUNCTION {n}" for n in PG_FUNCTIONS]
        for statement in _statements(names, search.POSTGRESQL):
            bind.exec_driver_sql(statement)
    bind.exec_driver_sql(PER_ACCOUNT)


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in SQLITE_TRIGGERS:
            bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
        for statement in OLD_SQLITE:
            bind.exec_driver_sql(statement)
        bind.exec_driver_sql("""UPDATE memberships SET sort_last_seen =
            (SELECT last_seen_at FROM users WHERE users.id = memberships.user_id)""")
    else:
        for statement in OLD_POSTGRESQL:
            bind.exec_driver_sql(statement)
        bind.exec_driver_sql("""UPDATE memberships m SET sort_last_seen = u.last_seen_at
            FROM users u WHERE u.id = m.user_id""")
