"""The foreign keys keep their guarantees on both databases, although on PostgreSQL those of
the bulk-written tables are statement-level triggers now (portal/models/pg_keys.py; issue 13:
import >= 25,000 rows/s, issue 16: purge with erasure of 100,000 < 2 s): a dangling
reference is refused, whether inserted (one row or many) or updated; deleting people
cascades to what is theirs and empties the references to them; a parent being deleted by
another transaction is waited for. Both databases run the first tests (SQLite enforces its
keys natively); the lock tests are PostgreSQL's.
"""
import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import pg_keys
from tests.builders import make_account
from tests.builders import make_user

MISSING = 999_999


def _refused(sql: str, **params) -> str:
    with pytest.raises(sa.exc.IntegrityError) as raised:
        db.session.execute(sa.text(sql), params)
        db.session.flush()
    db.session.rollback()
    return str(raised.value)


DANGLING = {
    "memberships.user_id": """INSERT INTO memberships (account_id, user_id, role, invite_state,
        created_at) VALUES (:account, :missing, 'member', 'invited', CURRENT_TIMESTAMP)""",
    "memberships.account_id": """INSERT INTO memberships (account_id, user_id, role,
        invite_state, created_at) VALUES (:missing, :user, 'member', 'invited',
        CURRENT_TIMESTAMP)""",
    "group_members.membership_id": """INSERT INTO group_members (group_id, membership_id,
        created_at) VALUES (:group, :missing, CURRENT_TIMESTAMP)""",
    "group_members.group_id": """INSERT INTO group_members (group_id, membership_id, created_at)
        VALUES (:missing, :membership, CURRENT_TIMESTAMP)""",
    "action_tokens.user_id": """INSERT INTO action_tokens (user_id, account_id, purpose,
        token_hash, password_stamp, expires_at, created_at) VALUES (:missing, :account,
        'invite', 'dangling', 'x', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)""",
    "outbox_messages.membership_id": """INSERT INTO outbox_messages (account_id, user_id,
        membership_id, kind, to_addr, subject, state, attempts, next_attempt_at, created_at)
        VALUES (:account, :user, :missing, 'invite', 'a@example.com', 'Hi', 'pending', 0,
        CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)""",
    "outbox_messages.user_id": """INSERT INTO outbox_messages (account_id, user_id, kind,
        to_addr, subject, state, attempts, next_attempt_at, created_at) VALUES (:account,
        :missing, 'invite', 'a@example.com', 'Hi', 'pending', 0, CURRENT_TIMESTAMP,
        CURRENT_TIMESTAMP)""",
    "audit_events.account_id": """INSERT INTO audit_events (account_id, action, details,
        created_at) VALUES (:missing, 'x', '{}', CURRENT_TIMESTAMP)""",
    # Many rows at once, one of them dangling (the import's INSERT ... SELECT).
    "memberships.user_id, set-wise": """INSERT INTO memberships (account_id, user_id, role,
        invite_state, created_at) SELECT :account, id, 'member', 'invited', CURRENT_TIMESTAMP
        FROM users WHERE id NOT IN (SELECT user_id FROM memberships WHERE account_id =
        :account) UNION ALL SELECT :account, :missing, 'member', 'invited',
        CURRENT_TIMESTAMP""",
    # A key changed by an UPDATE.
    "memberships.invited_by_id, updated": """UPDATE memberships SET invited_by_id = :missing
        WHERE id = :membership""",
    "outbox_messages.membership_id, updated": """UPDATE outbox_messages SET membership_id =
        :missing WHERE user_id = :user""",
}


@pytest.fixture
def people(app):
    account = make_account()
    group = db.session.execute(sa.text(
        "INSERT INTO groups (account_id, name, name_key, created_at) "
        "VALUES (:account, 'Crew', 'crew', CURRENT_TIMESTAMP) RETURNING id"),
        {"account": account.id}).scalar_one()
    db.session.commit()
    someone = make_user(account, password=None, group_ids=[group])  # invited: token, outbox
    others = [make_user(make_account(), password=None) for _ in range(3)]
    return account, group, someone, others


@pytest.mark.parametrize("case", DANGLING)
def test_a_dangling_reference_is_refused(people, case):
    account, group, someone, _others = people
    message = _refused(DANGLING[case], account=account.id, user=someone.user_id,
                       membership=someone.id, group=group, missing=MISSING)
    assert "FOREIGN KEY" in message.upper()
    # Nothing of the statement stayed.
    assert db.session.scalar(sa.text(
        "SELECT count(*) FROM memberships WHERE user_id = :missing OR account_id = :missing "
        "OR invited_by_id = :missing"), {"missing": MISSING}) == 0


def test_deleting_people_cascades_and_empties_the_references_to_them(people):
    account, group, someone, others = people
    gone = [someone.user_id] + [other.user_id for other in others]
    someone_id = someone.id
    # Someone stays whose invitation one of the deleted people sent, and who one deleted.
    stays = make_user(account, password=None)
    db.session.execute(sa.text(
        "UPDATE memberships SET invited_by_id = :by, deleted_by_id = :by WHERE id = :id"),
        {"by": someone.user_id, "id": stays.id})
    db.session.commit()
    stays_id = stays.id
    owned = {table: db.session.scalar(sa.text(
        f"SELECT count(*) FROM {table} WHERE user_id IN :ids").bindparams(
            sa.bindparam("ids", expanding=True)), {"ids": gone})
        for table in ("memberships", "action_tokens", "outbox_messages")}
    assert all(owned.values()), owned  # the fixture built something to cascade to

    db.session.execute(sa.text("DELETE FROM users WHERE id IN :ids").bindparams(
        sa.bindparam("ids", expanding=True)), {"ids": gone})
    db.session.commit()

    for table in ("memberships", "action_tokens", "outbox_messages"):
        assert db.session.scalar(sa.text(
            f"SELECT count(*) FROM {table} WHERE user_id IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)), {"ids": gone}) == 0, table
    assert db.session.scalar(sa.text(
        "SELECT count(*) FROM group_members WHERE membership_id = :id"), {"id": someone_id}) == 0
    assert db.session.execute(sa.text(
        "SELECT invited_by_id, deleted_by_id FROM memberships WHERE id = :id"),
        {"id": stays_id}).one() == (None, None)
    if db.engine.dialect.name == "postgresql":
        assert db.session.scalar(sa.text(
            "SELECT count(*) FROM user_search WHERE user_id IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)), {"ids": gone}) == 0


@pytest.mark.database("postgresql")
def test_on_postgresql_the_keys_of_the_bulk_tables_are_triggers(app):
    constraints = set(db.session.scalars(sa.text(
        "SELECT conname FROM pg_constraint WHERE contype = 'f'")))
    assert not constraints & pg_keys.NAMES
    # Every key of the tables an import writes and every key referencing users is one of them.
    names = {key.name for key in pg_keys.KEYS}
    assert {"fk_memberships_user_id_users", "fk_group_members_membership_id_memberships",
            "fk_outbox_messages_membership_id_memberships", "fk_audit_events_account_id_accounts",
            "fk_devices_user_id_users", "user_search_user_id_fkey"} <= names
    # The others stay PostgreSQL's own.
    assert "fk_steps_group_id_groups" in constraints


@pytest.mark.database("postgresql")
def test_a_parent_being_deleted_elsewhere_is_waited_for(people):
    account, _group, someone, _others = people
    other = db.engine.connect()
    try:
        # Another transaction deletes the person and has not committed: an insert referencing
        # them waits (PostgreSQL's own check does the same), here until its lock timeout.
        other.execute(sa.text("DELETE FROM users WHERE id = :id"), {"id": someone.user_id})
        db.session.execute(sa.text("SET LOCAL lock_timeout = '300ms'"))
        with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
            db.session.execute(sa.text(
                "INSERT INTO action_tokens (user_id, account_id, purpose, token_hash, "
                "password_stamp, expires_at, created_at) VALUES (:user, :account, 'reset', "
                "'waits', 'x', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
                {"user": someone.user_id, "account": account.id})
        db.session.rollback()
        other.rollback()
        # The other way round: the insert holds its parent, the delete waits.
        db.session.execute(sa.text(
            "INSERT INTO action_tokens (user_id, account_id, purpose, token_hash, "
            "password_stamp, expires_at, created_at) VALUES (:user, :account, 'reset', "
            "'holds', 'x', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
            {"user": someone.user_id, "account": account.id})
        other.execute(sa.text("SET LOCAL lock_timeout = '300ms'"))
        with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
            other.execute(sa.text("DELETE FROM users WHERE id = :id"), {"id": someone.user_id})
        other.rollback()
        db.session.commit()
        # Deleted once the insert committed: its token goes with the person.
        other.execute(sa.text("DELETE FROM users WHERE id = :id"), {"id": someone.user_id})
        other.commit()
        assert db.session.scalar(sa.text(
            "SELECT count(*) FROM action_tokens WHERE user_id = :id"),
            {"id": someone.user_id}) == 0
    finally:
        other.rollback()
        other.close()


@pytest.mark.database("postgresql")
def test_truncating_people_truncates_what_referenced_them(people):
    db.session.execute(sa.text("TRUNCATE users CASCADE"))
    db.session.commit()
    for table in ("user_search", "memberships", "action_tokens", "group_members"):
        assert db.session.scalar(sa.text(f"SELECT count(*) FROM {table}")) == 0, table


@pytest.mark.database("postgresql")
def test_a_referenced_id_never_changes(people):
    _account, _group, someone, _others = people
    message = _refused("UPDATE users SET id = :missing WHERE id = :id",
                       missing=MISSING, id=someone.user_id)
    assert "never changes" in message
