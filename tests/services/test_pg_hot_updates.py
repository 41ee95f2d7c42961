"""Resend Invite's mass update of the invitation times is a HOT update on PostgreSQL (issue 16,
item 7: Resend Invite to 100,000 took 5.13 s against a budget of 2 s).

It sets the expiry and sent time of every invitation it sends (30,000 rows in the bench). The
state index covered those times, so each changed row got a new entry in every one of
memberships' 13 indexes: a third of the Resend (EXPLAIN ANALYZE: 1.28 million buffers for
30,000 rows). PostgreSQL's state index now leaves them out and memberships keep room on each
page, so the rows are rewritten in place (HOT: 0.35-0.57 s instead of 4.8-7.4 s for 30,000).
Counted through the real service, in its own transaction (pg_stat_xact_user_tables).
"""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import Membership
from portal.models import User
from portal.models import utcnow
from portal.services import invitations
from portal.services.users import Selection
from portal.services.users import UserFilter
from tests.builders import make_account

PEOPLE = 400


@pytest.mark.database("postgresql")  # HOT updates are PostgreSQL's (SQLite rewrites only the
def test_resend_invite_rewrites_the_invitation_times_in_place(app, monkeypatch):  # changed indexes)
    account = make_account()
    now = utcnow()
    db.session.execute(sa.insert(User), [
        {"email": f"waiting{n}@example.com", "name": f"Waiting {n}",
         "must_change_password": False, "failed_logins": 0, "version": 1, "created_at": now}
        for n in range(PEOPLE)])
    # Invitations that ran out two days ago, between people who accepted theirs.
    db.session.execute(sa.insert(Membership).from_select(
        ["account_id", "user_id", "role", "invite_state", "invite_expires_at", "created_at"],
        sa.select(sa.literal(account.id), User.id, sa.literal("member"),
                  sa.case((User.id % 3 == 0, "invited"), else_="active"),
                  sa.case((User.id % 3 == 0, sa.literal(now - timedelta(days=2), sa.DateTime)),
                          else_=None),
                  sa.literal(now, sa.DateTime))
        .where(User.email.like("waiting%"))))
    db.session.commit()
    waiting = db.session.scalar(sa.select(sa.func.count()).where(
        Membership.account_id == account.id, Membership.invite_state == "invited"))
    assert waiting > PEOPLE // 4

    # The service commits; here its statements stay in one transaction, whose counts are read.
    monkeypatch.setattr(db.session, "commit", db.session.flush)
    actor = db.session.get(Membership, account.admin.id)
    report = invitations.resend_invites(actor, Selection(all_matching=True, filter=UserFilter()))
    assert report.resent == waiting
    updated, hot = db.session.execute(sa.text(
        "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
        "WHERE relname = 'memberships'")).one()
    db.session.rollback()
    assert updated >= waiting  # the invitations (and what else the service touches)
    # A page whose free quarter is used up (here a third of the rows change) puts the rest
    # elsewhere, with index entries; before, every one of them did (0 HOT).
    assert hot >= 0.8 * waiting, f"{updated - hot} of {updated} updates wrote new index entries"


def test_the_state_index_leaves_the_times_out_on_postgresql_only(app):
    rows = db.session.execute(sa.text(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'memberships'"
        if db.engine.dialect.name == "sqlite" else
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'memberships'")).scalars().all()
    covering = [sql for sql in rows if sql and "invite_expires_at" in sql]
    if db.engine.dialect.name == "sqlite":
        # SQLite rewrites only the indexes of changed columns: the list reads the times from it.
        assert len(covering) == 1 and "ix_memberships_live_state" in covering[0]
    else:
        assert covering == []
        assert any("ix_memberships_pg_live_state" in sql for sql in rows)
