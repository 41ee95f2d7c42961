"""Stored hashes: argon2id at OWASP parameters, salted, upgraded at sign-in (T44)."""
import pytest

from portal.extensions import db
from portal.services import auth
from portal.services import passwords
from tests.builders import PASSWORD

OWASP = {"ARGON2_TIME_COST": 2, "ARGON2_MEMORY_COST": 19456, "ARGON2_PARALLELISM": 1}


@pytest.mark.config(**OWASP)
def test_hashes_are_argon2id_with_owasp_parameters_and_a_salt_each(app):
    first = passwords.hasher().hash(PASSWORD)
    second = passwords.hasher().hash(PASSWORD)
    assert first.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert first != second


def test_a_hash_below_the_current_settings_is_upgraded_at_sign_in(app, account):
    user = account.admin.user
    assert "m=64," in user.password_hash
    app.config.update(OWASP)
    app.extensions.pop("portal.hasher")
    auth.authenticate(user.email, PASSWORD)
    db.session.refresh(user)
    assert "m=19456,t=2,p=1" in user.password_hash
    assert passwords.verify(user, PASSWORD)


def test_an_overlong_password_is_refused_without_hashing(account):
    assert passwords.verify(account.admin.user, "x" * 1_000_000) is False
    assert passwords.problems("x" * 257, passwords.Policy(), []) == ["Use at most 256 characters."]


def test_long_passwords_with_spaces_and_emoji_verify_exactly(account):
    user = account.admin.user
    secret = "  maçã 🍎 ünïcödé pässphrase with spaces  " * 2
    passwords.store_password(user, secret)
    assert passwords.verify(user, secret)
    assert not passwords.verify(user, secret.strip())
