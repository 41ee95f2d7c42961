"""Issue 13: Update existing users and the person shared by several accounts.

A person (name, phone) is shared by every account they belong to (DESIGN §1). The import's
"Update existing users" speaks for one account, so it changes the person's own name and phone
only when they belong to this account alone and have not set them themselves; for someone who
has not accepted this account's invitation yet it changes what this account typed for them
(memberships.invited_name/invited_phone); for anyone else it leaves them as they are and says
so. The preview shows which, and never a value of another account.
"""
import sqlalchemy as sa

from portal.extensions import db
from portal.models import Membership
from portal.models import User
from portal.services import csv_check
from portal.services import csv_import
from portal.services import import_history
from portal.services import profile
from portal.services import users as users_service
from tests.builders import csv_bytes
from tests.builders import group_names_of
from tests.builders import make_account
from tests.builders import make_device
from tests.builders import make_group
from tests.builders import make_user

HEADER = ("Full Name", "Email", "Groups", "Phone")


def person(email: str) -> User:
    db.session.expire_all()
    return db.session.scalar(sa.select(User).where(User.email == email))


def membership_of(account, email: str) -> Membership:
    db.session.expire_all()
    return db.session.scalar(sa.select(Membership).join(User, User.id == Membership.user_id).where(
        Membership.account_id == account.id, User.email == email))


def test_an_invited_person_of_another_account_changes_here_only(account):
    """Known elsewhere, not yet accepted here: the update changes what this account typed."""
    other = make_account()
    make_user(other, name="Pat Own", email="pat@example.com")  # accepted in the other account
    make_user(account, name="Pat Typed", email="pat@example.com", password=None)
    data = csv_bytes([("Pat New", "pat@example.com", "", "+44 20 7946 0958")], header=HEADER)
    preview = csv_check.preview_csv(account.admin, data, update=True)
    row = preview.rows[0]
    assert row.status == "update"
    # What this account sees, never the person's own name from the other account.
    assert row.changes == [("Full Name", "Pat Typed", "Pat New"),
                           ("Phone", "", "+442079460958")]
    assert "this account only" in row.note
    result = csv_import.import_csv(account.admin, data, invite=False, update=True)
    assert result.updated == 1
    pat = person("pat@example.com")
    assert (pat.name, pat.phone) == ("Pat Own", None)  # the other account sees them unchanged
    here = membership_of(account, "pat@example.com")
    assert (here.shown_name, here.shown_phone) == ("Pat New", "+442079460958")
    assert here.sort_name == "pat new"
    # Undo puts this account's values back, and nothing of the person's own.
    import_history.undo_import(account.admin, result.import_id)
    here = membership_of(account, "pat@example.com")
    assert (here.shown_name, here.shown_phone) == ("Pat Typed", None)
    assert here.sort_name == "pat typed"
    assert person("pat@example.com").name == "Pat Own"


def test_a_person_of_two_accounts_keeps_their_own_name_and_phone(account):
    """Accepted here and in another account: name and phone are theirs; groups still change."""
    other = make_account()
    make_user(other, name="Sam Own", email="sam@example.com")
    make_user(account, name="Sam Own", email="sam@example.com")  # accepted here too
    make_group(account, "Sales")
    data = csv_bytes([("Sam Renamed", "sam@example.com", "Sales", "+44 20 7946 0958")],
                     header=HEADER)
    preview = csv_check.preview_csv(account.admin, data, update=True)
    row = preview.rows[0]
    assert row.status == "update"
    assert row.changes == [("Groups", "", "+ Sales")]
    assert "another organisation" in row.note
    csv_import.import_csv(account.admin, data, invite=False, update=True)
    sam = person("sam@example.com")
    assert (sam.name, sam.phone) == ("Sam Own", None)
    assert "Sales" in group_names_of("sam@example.com")
    # Nothing else to change: skipped, and told why.
    again = csv_check.preview_csv(account.admin, data, update=True).rows[0]
    assert again.status == "skip"
    assert "another organisation" in again.note


def test_a_person_who_set_their_own_profile_keeps_it(account):
    member = make_user(account, name="Kim Old", email="kim@example.com")
    device, _token = make_device(member.user)
    profile.update_own_profile(device, name="Kim Chosen", phone="+44 20 7946 0958")
    data = csv_bytes([("Kim Admin", "kim@example.com", "", "+44 20 7946 0000")], header=HEADER)
    row = csv_check.preview_csv(account.admin, data, update=True).rows[0]
    assert row.status == "skip"
    assert "set them themselves" in row.note
    csv_import.import_csv(account.admin, data, invite=False, update=True)
    kim = person("kim@example.com")
    assert (kim.name, kim.phone) == ("Kim Chosen", "+442079460958")


def test_a_person_of_this_account_alone_is_updated_and_listed_so(account):
    make_user(account, name="Lee Old", email="lee@example.com")
    other = make_account()
    # Someone else of the other account: no bearing on Lee.
    make_user(other, name="Someone", email="someone@example.com")
    data = csv_bytes([("Lee New", "lee@example.com", "", "")], header=HEADER)
    row = csv_check.preview_csv(account.admin, data, update=True).rows[0]
    assert (row.status, row.changes) == ("update", [("Full Name", "Lee Old", "Lee New")])
    csv_import.import_csv(account.admin, data, invite=False, update=True)
    assert person("lee@example.com").name == "Lee New"
    # The Users list sorts and finds them by the new name.
    page = users_service.list_users(account.admin, users_service.UserFilter(q="lee new"))
    assert [r.email for r in page.rows] == ["lee@example.com"]
