"""The import's fast e-mail keys agree with people.normalise_email on every address."""
import pytest

from portal.services import people
from portal.services.csv_check import EmailKeys
from portal.services.errors import ServiceError

ADDRESSES = [
    "Ana@Example.COM", "ana.lima+tag@example.co.uk", "a!#$%&'*+/=?^_`{|}~-b@example.org",
    "postmaster@example.com", "Info@Example.com", "a..b@example.com", ".a@example.com",
    "a.@example.com", "a@example", "a@-example.com", "a@example-.com", "a@exa_mple.com",
    "a@example.123", "a@[127.0.0.1]", "a@localhost", "a@example.invalid", "a@b.test",
    "josé@example.com", "a@bücher.example", "a@xn--bcher-kva.example", "Bob <bob@example.com>",
    '"a b"@example.com', "a@@example.com", "@example.com", "a@", "a b@example.com",
    "x" * 64 + "@example.com", "x" * 65 + "@example.com", "x@" + "a" * 63 + ".com",
    "x@" + "a" * 64 + ".com", "x" * 240 + "@example.com", "x" * 250 + "@example.com",
    "alice＠example.com", "аlice@example.com", "a@EXAMPLE.com.", "a@.example.com",
]


def outcome(func, value):
    try:
        return func(value)
    except ServiceError:
        return "invalid"


@pytest.mark.parametrize("value", ADDRESSES)
def test_fast_keys_match_the_library(app, value):
    keys = EmailKeys()
    assert outcome(keys.key, value) == outcome(people.normalise_email, value)
    assert outcome(keys.key, value) == outcome(keys.key, value)  # and again from the cache
