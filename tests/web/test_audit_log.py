"""Admin → More → Audit trail through the pages (issue 15, item 4)."""
import csv
import io

from tests.builders import make_account
from tests.builders import make_user

AUDIT = "/admin/audit/"
HX = {"HX-Request": "true"}


def test_the_audit_page_lists_the_accounts_events_with_filters_and_pages(admin, account):
    make_user(account, name="Ana Lima", email="ana@example.com")
    other = make_account()
    make_user(other, name="Stranger Danger", email="stranger@example.com")
    html = admin.get(AUDIT).get_data(as_text=True)
    assert "<h1>Audit trail</h1>" in html and "Ana Lima &lt;ana@example.com&gt;" in html
    assert "stranger@example.com" not in html
    assert 'name="who"' in html and 'name="whom"' in html and 'name="what"' in html
    assert 'name="from"' in html and 'name="to"' in html and "Export to CSV" in html
    assert f'href="{AUDIT}"' in admin.get("/admin/participants/users/").get_data(as_text=True)
    # htmx gets the results only, filtered; the address keeps the filter.
    fragment = admin.get(AUDIT + "?whom=ana%40example.com&what=admin", headers=HX)
    text = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<h1>" not in text and 'id="audit-filters"' in text
    assert "user added" in text and "account created" not in text
    assert "export?whom=ana@example.com&amp;what=admin" in text  # the export keeps the filter


def test_keyset_pages_go_older_and_newer(admin, account, monkeypatch):
    from portal.services import audit_trail

    monkeypatch.setattr(audit_trail, "PAGE_SIZE", 2)
    for n in range(3):
        make_user(account, name=f"Person {n}")
    first = admin.get(AUDIT).get_data(as_text=True)
    assert "Person 2" in first and "Person 0" not in first and "before=" in first
    older = first.split('href="/admin/audit/?before=')[1].split('"')[0]
    second = admin.get(f"{AUDIT}?before={older}").get_data(as_text=True)
    assert "Person 0" in second and "Person 2" not in second and "after=" in second


def test_bad_filters_are_named_and_answer_422(admin):
    response = admin.get(AUDIT + "?from=yesterday&what=nonsense")
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "Enter a date as YYYY-MM-DD." in html
    response = admin.get(AUDIT + "?from=2026-05-02&to=2026-05-01", headers=HX)
    assert response.status_code == 422 and "is before" in response.get_data(as_text=True)
    response = admin.get(AUDIT + "?what=nonsense")
    assert response.status_code == 422 and "Choose what from the list." in response.get_data(
        as_text=True)
    assert admin.get(AUDIT + "?before=99999999999999999999").status_code == 200


def test_export_to_csv_streams_the_filtered_trail(admin, account):
    make_user(account, name="Ana Lima", email="ana@example.com")
    make_user(account, name="Bo Berg", email="bo@example.com")
    response = admin.get("/admin/audit/export?whom=ana%40example.com")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="audit-')
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert [r[2] for r in rows[1:]] == ["user.added"] and "ana@example.com" in rows[1][3]
    assert "audit exported" in admin.get(AUDIT + "?what=exports").get_data(as_text=True)


def test_members_cannot_see_the_audit_page(client, account):
    member = make_user(account)
    client.login(member.user.email)
    assert client.get(AUDIT).status_code == 403
    assert client.get("/admin/audit/export").status_code == 403
