"""Settings › Provisioning and `flask scim token …`: create (shown once), list, revoke."""
import re

import sqlalchemy as sa

from portal.extensions import db
from portal.models import AuditEvent
from portal.models import ScimToken
from portal.services import scim_tokens
from tests.builders import PASSWORD
from tests.builders import make_account
from tests.builders import make_user
from tests.scim.conftest import Provider
from tests.scim.conftest import assert_scim_error

TOKEN = re.compile(r'<code class="token">(scim_[A-Za-z0-9_-]+)</code>')


def test_an_admin_creates_a_token_sees_it_once_and_revokes_it(app, admin, account):
    page = admin.get("/admin/settings/provisioning/")
    assert page.status_code == 200 and "/scim/v2" in page.get_data(as_text=True)

    created = admin.post("/admin/settings/provisioning/",
                         data={"name": "Entra ID", "send_invitations": "y"})

    assert created.status_code == 201
    raw = TOKEN.search(created.get_data(as_text=True)).group(1)
    provider = Provider(app.test_client(), raw)
    assert provider.get("Users").status_code == 200
    again = admin.get("/admin/settings/provisioning/").get_data(as_text=True)
    assert raw not in again and "Entra ID" in again and "<td>sent</td>" in again
    token = db.session.scalar(sa.select(ScimToken))
    assert token.send_invitations and token.created_by_id == account.admin.user_id

    revoked = admin.post(f"/admin/settings/provisioning/{token.id}/revoke")

    assert revoked.status_code == 302
    assert_scim_error(provider.get("Users"), 401)
    actions = set(db.session.scalars(sa.select(AuditEvent.action)))
    assert {"scim_token.created", "scim_token.revoked"} <= actions


def test_members_and_other_accounts_cannot_manage_tokens(app, account):
    other = make_account("Other Org")
    token, _raw = scim_tokens.create_token(other.admin, "Theirs")
    member = make_user(account)
    client = app.test_client()
    client.login(member.user.email, PASSWORD)
    assert client.get("/admin/settings/provisioning/").status_code == 403

    admin = app.test_client()
    admin.login(account.admin.user.email, PASSWORD)
    assert admin.post(f"/admin/settings/provisioning/{token.id}/revoke").status_code == 404
    db.session.expire_all()
    assert db.session.get(ScimToken, token.id).revoked_at is None


def test_a_too_long_token_name_is_refused_on_the_form(admin):
    response = admin.post("/admin/settings/provisioning/", data={"name": "x" * 200})

    assert response.status_code == 422
    assert db.session.scalar(sa.select(sa.func.count(ScimToken.id))) == 0


def test_cli_creates_prints_and_revokes_tokens(app, runner, account):
    result = runner.invoke(args=["scim", "token", "create", "--account", account.name,
                                 "--name", "Okta"])
    assert result.exit_code == 0, result.output
    raw = result.stdout.strip().splitlines()[-1]
    provider = Provider(app.test_client(), raw)
    assert provider.get("Users").status_code == 200

    listed = runner.invoke(args=["scim", "token", "list", "--account", account.name])
    assert "Okta" in listed.output and raw not in listed.output
    revoked = runner.invoke(args=["scim", "token", "revoke", "--account", account.name,
                                  "--name", "Okta"])
    assert revoked.exit_code == 0, revoked.output
    assert_scim_error(provider.get("Users"), 401)
    missing = runner.invoke(args=["scim", "token", "revoke", "--account", account.name,
                                  "--name", "Okta"])
    assert missing.exit_code == 1 and "No live SCIM token" in missing.output
    unknown = runner.invoke(args=["scim", "token", "create", "--account", "Nope"])
    assert unknown.exit_code == 1 and "No account" in unknown.output
