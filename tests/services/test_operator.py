"""The actors with no person behind them: a CLI operator and a SCIM token share one shape."""
import sqlalchemy as sa

from portal.extensions import db
from portal.services import accounts
from portal.services import audit
from portal.services.scim_tokens import ScimActor


def statements_while(action) -> tuple[list[str], object]:
    """Run ``action`` and return the SELECT statements it sent, with its result."""
    sent: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append(statement)

    engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        result = action()
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    return sent, result


def test_a_scim_actor_is_an_operator_named_by_its_token(account):
    actor = ScimActor(account.id, token_id=7, token_name="Entra ID")
    assert isinstance(actor, accounts.Operator)
    assert (actor.account_id, actor.user_id, actor.is_admin, actor.scoped) == (account.id, None, True, True)
    assert audit.acting_label(actor) == "SCIM token \u201cEntra ID\u201d"
    assert audit.acting_label(accounts.Operator(account.id)) == "operator (CLI)"
    assert accounts.Operator(account.id).scoped is False


def test_an_operator_reads_its_account_only_when_something_needs_it(account):
    account_id, name = account.id, account.name
    db.session.commit()
    db.session.expunge_all()
    made, operator = statements_while(lambda: accounts.Operator(account_id))
    assert made == []
    first, read = statements_while(lambda: operator.account)
    again, cached = statements_while(lambda: operator.account)
    assert (len(first), again) == (1, [])
    assert read is cached and (read.id, read.name) == (account_id, name)


def test_the_cli_operator_of_an_account_is_the_account_by_name(account):
    operator = accounts.operator(account.name.upper())
    assert operator.account_id == account.id and operator.account is db.session.get(type(account), account.id)
