"""Every password form takes any length up to the documented maximum (256 characters).

zxcvbn refuses more than 72 characters, so the strength of a longer password is scored on its
first 72 (portal.services.passwords.problems); the whole password is hashed and checked.
"""
from datetime import timedelta

import pytest

from portal.services import passwords
from portal.services import tokens
from tests.builders import PASSWORD
from tests.builders import make_user

PHRASE = ("violet tractors whisper under amber lighthouses while seven quiet otters "
          "juggle frozen marmalade beside the crooked observatory of distant kelp ")


def long_password(length: int) -> str:
    return (PHRASE * 4)[:length]


LENGTHS = [73, passwords.MAX_LENGTH]


def invitation(client, account):
    invited = make_user(account, email="long.invite@example.com", password=None)
    raw = tokens.issue(invited.user, "invite", timedelta(hours=1), account_id=account.id)
    return invited.user.email, f"/invite/{raw}", {}


def reset_link(client, account):
    member = make_user(account)
    raw = tokens.issue(member.user, "reset", timedelta(hours=1))
    return member.user.email, f"/reset-password/{raw}", {}


def account_page(client, account):
    member = make_user(account)
    assert client.login(member.user.email).status_code == 302
    return member.user.email, "/account/password", {"current_password": PASSWORD}


@pytest.mark.parametrize("form", [invitation, reset_link, account_page])
@pytest.mark.parametrize("length", LENGTHS)
def test_every_password_form_takes_a_long_password(app, client, account, form, length):
    email, path, fields = form(client, account)
    new = long_password(length)
    response = client.post(path, data={**fields, "password": new, "confirm": new})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert app.test_client().login(email, new).status_code == 302


def test_a_long_weak_password_is_still_refused_and_one_past_the_maximum_is_told_so(
        app, client, account):
    member = make_user(account)
    raw = tokens.issue(member.user, "reset", timedelta(hours=1))
    weak = "a" * 100
    response = client.post(f"/reset-password/{raw}", data={"password": weak, "confirm": weak})
    assert response.status_code == 422
    assert "Choose a less common password." in response.get_data(as_text=True)
    too_long = long_password(passwords.MAX_LENGTH) + "x"
    response = client.post(f"/reset-password/{raw}", data={"password": too_long,
                                                           "confirm": too_long})
    assert response.status_code == 422
    assert "256" in response.get_data(as_text=True)
