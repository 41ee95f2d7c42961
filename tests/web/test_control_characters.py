"""Control characters: refused with a message in stored text fields, dropped from searches.

One rule for every form (portal/forms.py): a NUL, a line break or a text-direction override
never reaches a name, and never reaches SQLite's FTS5 (a NUL ends its phrase early: "unterminated
string") or PostgreSQL (which refuses NUL in any text parameter).
"""
import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.forms import CONTROL_MESSAGE
from portal.models import Group
from portal.models import Taskstream
from tests.builders import make_group
from tests.builders import make_taskstream
from tests.builders import make_user

HTMX = {"HX-Request": "true"}


@pytest.mark.parametrize("q", ["Ada\x00 Love", "a\x00b", "\x00", "Ada\u202e"])
def test_a_search_with_control_characters_drops_them(admin, account, q):
    make_user(account, name="Ada Lovelace")
    for path in ("/admin/participants/users/", "/admin/participants/groups/"):
        response = admin.get(path, query_string={"q": q})
        assert response.status_code == 200, path
    found = admin.get("/admin/participants/users/", query_string={"q": "Ada\x00 Love"})
    assert "Ada Lovelace" in found.get_data(as_text=True)


@pytest.mark.parametrize("name", ["Night\x00shift", "Night\nshift", "\u202eNight shift"])
def test_group_and_taskstream_names_with_control_characters_are_refused(admin, account, name):
    group = make_group(account, "Drivers")
    stream = make_taskstream(account, "Deliveries", [("Load", None)])
    for path in ("/admin/participants/groups/new", f"/admin/participants/groups/{group.id}/rename",
                 "/admin/taskstreams/", f"/admin/taskstreams/{stream.id}/rename",
                 f"/admin/taskstreams/{stream.id}/steps"):
        response = admin.post(path, data={"name": name})
        assert response.status_code == 422, path
        assert CONTROL_MESSAGE in response.get_data(as_text=True), path
    names = db.session.scalars(sa.select(Group.name)).all() + db.session.scalars(
        sa.select(Taskstream.name)).all()
    assert sorted(names) == ["Deliveries", "Drivers"]


def test_people_and_settings_fields_refuse_control_characters(admin, account):
    member = make_user(account, name="Grace Hopper")
    for path, data in [
        ("/admin/participants/users/new", {"name": "Eve\x00", "email": "eve@example.com"}),
        (f"/admin/participants/users/{member.id}/edit",
         {"name": "Grace\x00Hopper", "email": member.user.email}),
        ("/account/profile", {"name": "Admin\x1b[31m"}),
        ("/admin/settings/", {"password_min_length": "12", "invite_valid_hours": "72",
                              "sender_name": "Portal\r\nBcc: x@example.com"}),
    ]:
        response = admin.post(path, data=data, headers=HTMX)
        assert response.status_code == 422, path
        assert CONTROL_MESSAGE in response.get_data(as_text=True), path
    db.session.expire_all()
    assert member.user.name == "Grace Hopper"


def test_every_form_of_the_portal_has_the_rule(app):
    """A form made straight from FlaskForm or WTForms' Form would let control characters in."""
    from flask_wtf import FlaskForm
    from wtforms import Form as WTForm

    from portal.forms import ApiForm
    from portal.forms import Form

    def walk(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from walk(sub)

    forms = [f for f in walk(WTForm) if f.__module__.startswith("portal.")]
    assert len(forms) > 20
    bare = [f"{f.__module__}.{f.__name__}" for f in forms
            if f not in (Form, ApiForm) and not issubclass(f, (Form, ApiForm))]
    assert not bare
    assert not [f for f in walk(FlaskForm) if f.__module__.startswith("portal.")
                and not issubclass(f, Form)]
