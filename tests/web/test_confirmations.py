"""Issue 14: a mass action asks first (templates/_confirm.html); only the confirm POST acts."""
from portal.extensions import db
from portal.models import OutboxMessage
from tests.builders import age_invitations
from tests.builders import make_user

HX = {"HX-Request": "true"}
RESEND = "/admin/participants/users/bulk/resend-invite"


def queued() -> int:
    return db.session.query(OutboxMessage).count()


def test_resend_invite_to_several_asks_first_and_only_the_confirm_post_queues(admin, account):
    people = [make_user(account, name=f"Waiting {n}", password=None) for n in range(3)]
    age_invitations()
    before = queued()
    ids = [person.id for person in people]
    question = admin.post(RESEND, data={"ids": ids, "q": "waiting"}, headers=HX)
    assert question.status_code == 200
    html = question.get_data(as_text=True)
    assert "<dialog" in html and "Resend 3 invitations?" in html and "<html" not in html
    assert 'name="confirmed" value="y"' in html
    assert all(f'name="ids" value="{member_id}"' in html for member_id in ids)
    assert queued() == before
    done = admin.post(RESEND, data={"ids": ids, "q": "waiting", "confirmed": "y"}, headers=HX)
    assert "Invite resent to 3 users" in done.get_data(as_text=True)
    assert queued() == before + 3


def test_select_all_matching_names_the_count_and_works_as_a_page_without_javascript(admin, account):
    for n in range(4):
        make_user(account, name=f"Waiting {n}", password=None)
    age_invitations()
    before = queued()
    page = admin.post(RESEND, data={"all_matching": "y", "q": "waiting"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<html" in html and "Resend 4 invitations?" in html
    assert 'name="all_matching" value="y"' in html and 'name="q" value="waiting"' in html
    assert queued() == before
    done = admin.post(RESEND, data={"all_matching": "y", "q": "waiting", "confirmed": "y"})
    assert done.status_code == 302
    assert queued() == before + 4


def test_resend_invite_to_one_person_needs_no_question(admin, account):
    waiting = make_user(account, name="Waiting Person", password=None)
    age_invitations()
    before = queued()
    done = admin.post(RESEND, data={"ids": [waiting.id]}, headers=HX)
    assert "Invite resent to 1 user" in done.get_data(as_text=True)
    assert queued() == before + 1


def test_logging_out_a_device_asks_first_and_only_the_confirm_post_ends_it(app, admin, account):
    from tests.web.test_devices import device_ids
    from tests.web.test_devices import signed_in

    member = make_user(account)
    phone = signed_in(app, member.user.email)
    (device_id,) = device_ids(member.user_id)
    url = f"/admin/participants/users/{member.id}/devices/{device_id}/logout"
    details = admin.get(f"/admin/participants/users/{member.id}").get_data(as_text=True)
    assert ">Log out</button>" in details and ">×</button>" not in details
    question = admin.post(url, headers=HX)
    html = question.get_data(as_text=True)
    assert question.status_code == 200 and "<dialog" in html and "?</h2>" in html
    assert 'hx-target="#devices"' in html and 'name="confirmed" value="y"' in html
    assert phone.get("/account").status_code == 200  # still signed in
    assert "<html" in admin.post(url).get_data(as_text=True)  # the same question as a page
    assert phone.get("/account").status_code == 200
    done = admin.post(url, data={"confirmed": "y"}, headers=HX)
    assert "is logged out." in done.get_data(as_text=True)
    assert phone.get("/account").status_code == 302


def test_removing_a_group_member_asks_first_on_the_group_and_on_user_details(admin, account):
    from portal.models import GroupMember
    from tests.builders import make_group

    team = make_group(account, "Night shift")
    ana = make_user(account, name="Ana Example", group_ids=[team.id])

    def members() -> int:
        return db.session.query(GroupMember).filter_by(group_id=team.id).count()

    details = admin.get(f"/admin/participants/users/{ana.id}").get_data(as_text=True)
    assert "Remove from Night shift" in details and ">×</button>" not in details
    for url, data in ((f"/admin/participants/groups/{team.id}/members/remove", {"member_ids": [ana.id]}),
                      (f"/admin/participants/groups/member/{ana.id}/remove", {"group_id": team.id})):
        html = admin.post(url, data=data, headers=HX).get_data(as_text=True)
        assert "<dialog" in html and "Remove Ana Example from “Night shift”?" in html, url
        assert members() == 1
    done = admin.post(f"/admin/participants/groups/member/{ana.id}/remove",
                      data={"group_id": team.id, "confirmed": "y"}, headers=HX)
    assert "Removed Ana Example from “Night shift”." in done.get_data(as_text=True)
    assert members() == 0
