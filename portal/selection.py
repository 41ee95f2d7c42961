"""The Users list and its selection: what every bulk action on users shares, whichever area owns it.

A bulk endpoint validates a ``SelectionForm``, passes ``form.selection()`` to one service and
answers with ``rows_response``: the list as the admin left it (same search, filters, sort and
page) with the selection cleared, plus the flash. See ARCHITECTURE.md, "A new bulk action".
"""
from collections.abc import Collection
from urllib.parse import urlencode

from flask import url_for
from wtforms import BooleanField
from wtforms import SearchField
from wtforms import SelectMultipleField
from wtforms import StringField

from portal.forms import Form
from portal.forms import int_or_none
from portal.models import InviteState
from portal.services import invitation_states
from portal.services import saved_views
from portal.services import users
from portal.services.users import SORTS
from portal.services.users import STATES
from portal.services.users import Selection
from portal.services.users import UserFilter
from portal.session import current_actor
from portal.web import answer
from portal.web import confirm

STATE_LABELS = {InviteState.INVITED: "Invited", InviteState.INVITE_FAILED: "Invite failed",
                InviteState.ACTIVE: "Active"}


class ListForm(Form):
    """The list's query string: search, group and state filters, sort, page (GET, no CSRF)."""

    class Meta:
        csrf = False

    q = SearchField("Search")
    group = StringField("Group", filters=[int_or_none])
    state = StringField("State")
    invitation = StringField("Invitation")
    sort = StringField(default="name")
    page = StringField(default="1", filters=[int_or_none])

    def user_filter(self) -> UserFilter:
        """Return the filter these fields describe (unknown values are dropped)."""
        return UserFilter(
            q=(self.q.data or "")[:200],
            group_id=self.group.data if isinstance(self.group.data, int) else None,
            state=self.state.data if self.state.data in STATES else None,
            invitation=(self.invitation.data if self.invitation.data in invitation_states.CHOICES
                        else None),
        )

    def sort_key(self) -> str:
        return self.sort.data if self.sort.data in SORTS else "name"

    def page_number(self) -> int:
        return self.page.data if isinstance(self.page.data, int) and self.page.data > 0 else 1


class SelectionForm(ListForm):
    """What a bulk button posts: checked ids, or all_matching plus the filter; with CSRF.

    microblog's EmptyForm with the selection in it. Every bulk endpoint validates one of
    these and passes ``form.selection()`` to its service.
    """

    class Meta:
        csrf = True

    ids = SelectMultipleField(coerce=int, validate_choice=False)
    all_matching = BooleanField()
    #: Set by the confirm button of templates/_confirm.html: the question was asked and answered.
    confirmed = BooleanField()

    def selection(self) -> Selection:
        """Return the portal.services.users.Selection this form describes."""
        return Selection(
            ids=tuple(self.ids.data or ()),
            all_matching=bool(self.all_matching.data),
            filter=self.user_filter(),
        )


def list_context(form: ListForm, *, blocks: Collection[str] | None = None) -> dict:
    """Return what templates/users/index.html needs to render the list for this query.

    ``blocks`` are the blocks of that template the answer renders (None: the whole page); what
    none of them shows is not read. The group filter's choices are the whole page's only; the
    invitations summary is the whole page's and ``invitations_oob``'s (it scans the account's
    invitations on PostgreSQL, whose times are in no index there so that Resend Invite stays a
    HOT update). So a search keystroke, a filter or a page link reads only the rows it shows.
    """
    actor = current_actor()
    page = users.list_users(actor, form.user_filter(), form.sort_key(), form.page_number())
    query = _query(page)
    context = {
        "form": form,
        "page": page,
        "query": query,
        # The saved views beside the tabs, the one of this query marked.
        "saved_views": saved_views.panel(actor, "users", urlencode(query)),
        "list_url": url_for("users.index"),
        "state_labels": STATE_LABELS,
        "invitation_labels": invitation_states.LABELS,
    }
    if blocks is None:
        context["groups"] = users.group_choices(actor)
    if blocks is None or "invitations_oob" in blocks:
        context["invitations"] = invitation_states.summary(actor)
    return context


def _query(page: users.UserPage) -> dict:
    """Return the URL parameters that reproduce this view of the list (empty ones left out)."""
    query = {
        "q": page.filter.q or None,
        "group": page.filter.group_id,
        "state": page.filter.state,
        "invitation": page.filter.invitation,
        "sort": page.sort if page.sort != "name" else None,
        "page": page.page if page.page != 1 else None,
    }
    return {key: value for key, value in query.items() if value is not None}


def rows_response(form: ListForm, message: str, category: str = "success", *, status=200,
                  trigger: str | None = None, oob: tuple[tuple[str, str], ...] = (),
                  block: str = "rows", **extra):
    """Answer a bulk action: the refreshed rows plus the flash (htmx), else back to the list.

    Every bulk endpoint (``users.bulk_*``, ``groups.bulk_add_to_group``, ...) ends with this,
    passing the SelectionForm it validated. ``oob`` adds regions of other templates out of band
    (Delete's side panel), rendered with ``extra`` in the context. A side panel's form that
    answers into #sidebar (Add to Group) asks for ``block="rows_oob"``: the rows out of band,
    and ``trigger="closeSidebar"``.
    """
    # htmx gets these blocks; a plain request is redirected to the list, so renders none.
    context = list_context(form, blocks=(block, *(name for template, name in oob
                                                  if template == "users/index.html")))
    return answer(
        "users/index.html", block, message=message, category=category, status=status,
        redirect_to=url_for("users.index", **context["query"]),
        trigger=trigger, oob=oob, **context, **extra,
    )


def confirm_selection(form: SelectionForm, title: str, text: str, action_label: str, action: str):
    """Ask before a mass action on this selection (``web.confirm``): its confirm button posts
    the same selection (ids, or all_matching and the filter) with ``confirmed=y``."""
    selection = form.selection()
    fields = [("q", selection.filter.q or ""), ("group", selection.filter.group_id or ""),
              ("state", selection.filter.state or ""),
              ("invitation", selection.filter.invitation or ""), ("sort", form.sort_key()),
              ("page", form.page_number())]
    if selection.all_matching:
        fields.append(("all_matching", "y"))
    else:
        fields.extend(("ids", member_id) for member_id in selection.ids)
    back = url_for("users.index", **{key: value for key, value in fields[:4] if value})
    return confirm(title, text, action, action_label, back=back, fields=fields)
