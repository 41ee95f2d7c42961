"""What members see (issue 15, item 6): a member signing in on the web gets their groups, the
taskstreams and steps they take part in, their devices with Log out, and their profile, from the
same service as the app's /api/v1/me."""
import re

from portal.extensions import db
from portal.services import profile
from tests.builders import make_account
from tests.builders import make_device
from tests.builders import make_group
from tests.builders import make_taskstream
from tests.builders import make_user
from tests.web.test_api import api_sign_in
from tests.web.test_api import bearer


def build(account):
    ana = make_user(account, name="Ana Lima", email="ana@example.com")
    bo = make_user(account, name="Bo Berg")
    drivers = make_group(account, "Drivers", members=[ana])
    packers = make_group(account, "Packers", members=[bo])
    make_taskstream(account, "Delivery round", [("Load the van", packers.id),
                                                ("Drive", drivers.id), ("Sign off", drivers.id)])
    make_taskstream(account, "Payroll", [("Approve", packers.id)])
    other = make_account("Second Org")
    make_user(other, email="ana@example.com")
    make_group(other, "Night shift", members=[db.session.merge(other.admin)])  # not Ana's
    return ana


def test_a_member_signing_in_sees_groups_taskstreams_steps_devices_and_profile(client, account):
    ana = build(account)
    make_device(ana.user, name="Ana's phone", kind="iphone", account=account)
    response = client.login("ana@example.com")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(("/account", "/choose-account"))
    client.post("/choose-account", data={"account": account.id})
    html = client.get("/account").get_data(as_text=True)
    section = html[html.index('id="participation"'):]
    assert "Drivers" in section and "Packers" not in section and "Night shift" not in section
    assert "Delivery round" in section and "Payroll" not in section
    assert "Drive" in section and "Sign off" in section and "Load the van" not in section
    assert "Second Org" in section  # each of the person's accounts, with what they do there
    assert 'name="name"' in html and 'value="Ana Lima"' in html  # the profile
    # Their other device, with Log out asking first (the confirmation dialog).
    devices = html[html.index('id="devices"'):]
    assert "Ana&#39;s phone" in devices or "Ana's phone" in devices
    assert re.search(r'hx-post="/account/devices/\d+/logout" hx-target="#confirm"', devices)


def test_the_page_and_the_app_answer_from_the_same_overview(client, account):
    ana = build(account)
    token = api_sign_in(client, "ana@example.com")
    me = client.get("/api/v1/me", headers=bearer(token)).get_json()
    page = profile.own_page(make_device(ana.user, account=account)[0])
    seen = page.overview
    assert [g["name"] for g in me["groups"]] == [g.name for g in seen.groups]
    assert [t["name"] for t in me["taskstreams"]] == [r.taskstream.name for r in seen.taskstreams]
    by_account = {own.membership.account.name: own for own in seen.accounts}
    assert [g.name for g in by_account[account.name].groups] == ["Drivers"]
    assert [[s.name for s in r.steps] for r in by_account[account.name].taskstreams] == [
        ["Drive", "Sign off"]]
    assert by_account["Second Org"].groups == []
    assert {d.device.name for d in page.devices.live} >= {"Chrome 131 on Mac OS X"}
