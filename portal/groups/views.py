"""Admin → Process Setup → Participants → Groups, and Add to Group for users.

Every way of adding users to groups ends in ``services.groups.add_to_groups``: the Users tab's
bulk **Add to Group** and User Details (``bulk_add_to_group``), a group's page (``add_members``)
and **New Group** (``new``).
"""
from urllib.parse import urlencode

from flask import Blueprint
from flask import flash
from flask import redirect
from flask import request
from flask import url_for

from portal.forms import ActionForm
from portal.forms import group_options
from portal.forms import page_number
from portal.groups.forms import AddToGroupForm
from portal.groups.forms import DeleteGroupsForm
from portal.groups.forms import GroupListForm
from portal.groups.forms import MemberListForm
from portal.groups.forms import MembersForm
from portal.groups.forms import NewGroupForm
from portal.groups.forms import RemoveFromGroupForm
from portal.groups.forms import RenameForm
from portal.selection import list_context as users_list_context
from portal.selection import rows_response
from portal.services import groups
from portal.services import saved_views
from portal.services import taskstreams
from portal.services import users
from portal.services.errors import NotFound
from portal.services.errors import OutOfScope
from portal.services.errors import ServiceError
from portal.services.users import Selection
from portal.session import admin_required
from portal.session import current_actor
from portal.web import UNREADABLE
from portal.web import answer
from portal.web import confirm
from portal.web import apply_error
from portal.web import client_redirect
from portal.web import is_fragment_request
from portal.web import record_refusal
from portal.web import render

bp = Blueprint("groups", __name__, url_prefix="/admin/participants/groups")


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _names_of(names: list[str]) -> str:
    quoted = [f"“{n}”" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def added_message(result: groups.Added) -> str:
    """Say what add_to_groups did, in the words of the flash."""
    names = _names_of([g.name for g in result.groups])
    if len(result.groups) == 1:
        text = f"Added {_plural(result.added, 'user')} to {names}."
        if result.skipped:
            verb = "was" if result.skipped == 1 else "were"
            text += f" {_plural(result.skipped, 'user')} {verb} in it already."
        return text
    text = f"Added {_plural(result.selected, 'user')} to {names}: "
    text += f"{_plural(result.added, 'new membership')}"
    return text + (f", {result.skipped:,} already there." if result.skipped else ".")


def list_context(form: GroupListForm, **extra) -> dict:
    """Return what templates/groups/index.html needs for this search and page."""
    page = groups.list_groups(current_actor(), form.q.data or "", page_number(form.page))
    query = {k: v for k, v in {"q": page.q or None,
                               "page": page.page if page.page > 1 else None}.items() if v}
    return {"page": page, "query": query,
            "saved_views": saved_views.panel(current_actor(), "groups", urlencode(query)),
            "list_url": url_for("groups.index"), **extra}


@bp.route("/")
@admin_required
def index():
    """List the account's groups: search and pages; htmx gets only the results."""
    return render("groups/index.html", "results", "saved_views_oob",
                  **list_context(GroupListForm(request.args)))


# --- New Group -----------------------------------------------------------------------------


def _new_context(form: NewGroupForm) -> dict:
    actor = current_actor()
    chosen = groups.chosen_members(actor, form.member_ids.data or [])
    found = groups.search_members(actor, form.q.data or "", exclude_ids=[m.id for m in chosen])
    return {"form": form, "chosen": chosen, "found": found, "picker_url": url_for(".new")}


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def new():
    """New Group in the sidebar: a name and members picked by searching (GET ?q= searches)."""
    if request.method == "GET":
        form = NewGroupForm(request.args, meta={"csrf": False})
        form.validate()
        blocks = ("picker_results",) if "q" in request.args else ("sidebar",)
        context = _new_context(form)
        if not is_fragment_request():  # the page shows the list under the panel
            context.update(list_context(GroupListForm(request.args)))
        return render("groups/new.html", *blocks, **context)
    form = NewGroupForm()
    if form.validate_on_submit():
        try:
            result = groups.add_to_groups(
                current_actor(), [], Selection(ids=tuple(form.member_ids.data or ())),
                new_group_name=form.name.data or "",
            )
        except ServiceError as error:
            apply_error(form, error)
        else:
            group = result.created
            # The list from its first page: the form's own "q" is the picker's search.
            return answer("groups/index.html", "results_oob", trigger="closeSidebar",
                          message=f"Created the group “{group.name}” with "
                                  f"{_plural(result.added, 'member')}.",
                          redirect_to=url_for(".detail", group_id=group.id),
                          **list_context(GroupListForm(formdata=None)))
    return render("groups/new.html", "sidebar", status=422, **_new_context(form),
                  **list_context(GroupListForm(formdata=None)))


# --- one group -----------------------------------------------------------------------------


def _detail_context(group, form: MemberListForm | None = None, **extra) -> dict:
    actor = current_actor()
    form = form or MemberListForm(formdata=None)
    chosen = groups.chosen_members(actor, form.member_ids.data or [])
    return {
        "group": group,
        "members": groups.list_members(actor, group, form.mq.data or "", page_number(form.page)),
        "steps": groups.assigned_steps([group.id]),
        "list_form": form,
        "chosen": chosen,
        "found": groups.search_members(actor, form.q.data or "",
                                       exclude_ids=[m.id for m in chosen],
                                       exclude_group_id=group.id),
        "picker_url": url_for(".detail", group_id=group.id),
        "rename_form": extra.pop("rename_form", None) or RenameForm(name=group.name),
        **extra,
    }


@bp.route("/<int:group_id>")
@admin_required
def detail(group_id: int):
    """Show a group: rename, members (add, remove), the steps it is assigned to."""
    group = groups.get_group(current_actor(), group_id)
    form = MemberListForm(request.args)
    form.validate()
    block = "picker_results" if "q" in request.args else "members"
    return render("groups/detail.html", block, **_detail_context(group, form))


@bp.post("/<int:group_id>/rename")
@admin_required
def rename(group_id: int):
    """Rename the group; a taken or empty name is shown on the field."""
    actor = current_actor()
    group = groups.get_group(actor, group_id)
    form = RenameForm()
    if form.validate_on_submit():
        try:
            groups.rename_group(actor, group.id, form.name.data or "")
        except ServiceError as error:
            apply_error(form, error)
        else:
            return answer("groups/detail.html", "group_head",
                          message=f"Renamed the group to “{group.name}”.",
                          redirect_to=url_for(".detail", group_id=group.id),
                          **_detail_context(group))
    return render("groups/detail.html", "group_head", status=422,
                  **_detail_context(group, rename_form=form))


@bp.post("/<int:group_id>/members")
@admin_required
def add_members(group_id: int):
    """Add the users picked on the group's page."""
    actor = current_actor()
    group = groups.get_group(actor, group_id)
    form = MembersForm()
    message, category, status = UNREADABLE, "error", 422
    if form.validate_on_submit():
        try:
            result = groups.add_to_groups(actor, [group.id],
                                          Selection(ids=tuple(form.member_ids.data or ())))
        except ServiceError as error:
            message = error.message
        else:
            message, category, status = added_message(result), "success", 200
    return answer("groups/detail.html", "members", message=message, category=category,
                  status=status, redirect_to=url_for(".detail", group_id=group.id),
                  **_detail_context(group))


GONE = "That group no longer exists."


def _gone(error: NotFound) -> str:
    """Say a group is not there (another account's id is recorded as a refused request)."""
    if isinstance(error, OutOfScope):
        record_refusal(error)
    return GONE


def _group_or_gone(actor, group_id: int):
    """(the group, None), or (None, GONE) when it is not there."""
    try:
        return groups.get_group(actor, group_id), None
    except NotFound as error:
        return None, _gone(error)


def _confirm_removal(who: str, group, back: str, fields: list, **kwargs):
    """The one confirmation before users leave a group (its page's Remove, User Details')."""
    return confirm(f"Remove {who} from “{group.name}”?",
                   "They stay in the account and in their other groups.",
                   request.path, "Remove", danger=True, back=back, fields=fields, **kwargs)


def _removal(remove, done, *, in_use: str | None, gone: bool = False):
    """Run one confirmed removal from a group: (blocked, message, category). A step that would
    have no one left blocks it (``in_use`` beside the step's reason); a group gone meanwhile
    says GONE when ``gone`` (else the service's words); any other refusal says why; else
    ``done(removed)``."""
    try:
        removed = remove()
    except groups.GroupInUse as error:
        return error, in_use, "error"
    except NotFound as error:
        return None, _gone(error) if gone else error.message, "error"
    except ServiceError as error:
        return None, error.message, "error"
    return None, done(removed), "success"


@bp.post("/<int:group_id>/members/remove")
@admin_required
def remove_members(group_id: int):
    """Take users out of the group, unless a step assigned to it would have no one left."""
    actor = current_actor()
    group = groups.get_group(actor, group_id)
    form = MembersForm()
    blocked, message, category = None, UNREADABLE, "error"
    if form.validate_on_submit() and request.form.get("confirmed") != "y":
        chosen = groups.chosen_members(actor, form.member_ids.data or [])
        if chosen:
            who = chosen[0].user.name if len(chosen) == 1 else _plural(len(chosen), "user")
            return _confirm_removal(who, group, url_for(".detail", group_id=group.id),
                                    [("member_ids", member.id) for member in chosen],
                                    target="#members")
    if form.validate_on_submit():
        blocked, message, category = _removal(
            lambda: groups.remove_from_group(actor, group.id, form.member_ids.data or []),
            lambda removed: f"Removed {_plural(removed, 'user')} from “{group.name}”.",
            in_use="Nobody was removed.")
    return answer("groups/detail.html", "members", message=message, category=category,
                  redirect_to=url_for(".detail", group_id=group.id),
                  page_errors=[blocked.message] if blocked else (),
                  **_detail_context(group, blocked=blocked))


@bp.post("/<int:group_id>/delete")
@admin_required
def delete(group_id: int):
    """Delete this group (from its page) once confirmed; a group a step needs says why instead."""
    actor = current_actor()
    group = groups.get_group(actor, group_id)
    back = url_for(".detail", group_id=group_id)
    if not ActionForm().validate_on_submit():
        return answer("groups/detail.html", "members_oob", message=UNREADABLE, category="error",
                      redirect_to=back, **_detail_context(group))
    confirmed = request.form.get("confirmed") == "y"
    try:
        result = (groups.delete_groups if confirmed else groups.plan_group_deletion)(
            actor, [group.id])
    except ServiceError as error:
        return answer("groups/detail.html", "members_oob", message=error.message,
                      category="error", redirect_to=back, **_detail_context(group))
    if result.blocked:
        # Nothing to ask: it cannot go, and the notice over its members says why and links the fix.
        [blocked] = result.blocked
        return answer("groups/detail.html", "members_oob", message="The group was not deleted.",
                      category="error", redirect_to=back, page_errors=[blocked.message],
                      **_detail_context(group, blocked=blocked))
    if not confirmed:
        return confirm(f"Delete the group “{group.name}”?", _what_stays(1, result.members),
                       request.path, "Delete group", danger=True, back=back, target="#members")
    flash(f"Deleted the group {_names_of(result.names)}.", "success")
    return client_redirect(url_for(".index"))


def _what_stays(groups_going: int, members: int) -> str:
    """Say that the members of the groups going stay users (the confirmation's text)."""
    going = "only the group goes" if groups_going == 1 else "only the groups go"
    if not members:
        return f"{'It has' if groups_going == 1 else 'They have'} no members; {going}."
    verb = "stays" if members == 1 else "stay"
    return f"Their {_plural(members, 'member')} {verb} in the account; {going}."


@bp.post("/bulk/delete")
@admin_required
def bulk_delete():
    """Delete the checked groups once confirmed; those assigned to a step stay, each with its
    step linked (and when none can go, nothing is asked: it says why)."""
    form = DeleteGroupsForm()
    blocked = []
    message, category = UNREADABLE, "error"
    if form.validate_on_submit():
        confirmed = request.form.get("confirmed") == "y"
        try:
            result = (groups.delete_groups if confirmed else groups.plan_group_deletion)(
                current_actor(), form.ids.data or [])
        except ServiceError as error:
            message = error.message
        else:
            blocked = result.blocked
            if not confirmed and result.names:
                return _confirm_group_deletion(form, result)
            message = None
            if result.names and confirmed:
                noun = "group" if len(result.names) == 1 else "groups"
                flash(f"Deleted the {noun} {_names_of(result.names)}.", "success")
            if blocked:
                message = (f"{_plural(len(blocked), 'group')} could not be deleted; see why above "
                           "the list.")
    context = list_context(form, blocked=blocked)
    # The confirmation answers into #results; the first click (nothing to ask) out of band.
    block = "results" if request.form.get("confirmed") == "y" else "results_oob"
    return answer("groups/index.html", block, message=message, category=category,
                  page_errors=[e.message for e in blocked],
                  redirect_to=url_for(".index", **context["query"]), **context)


def _confirm_group_deletion(form: DeleteGroupsForm, plan: groups.Deleted):
    """Ask before deleting the checked groups: how many, their members, and who must stay."""
    n = len(plan.names)
    title = (f"Delete the group {_names_of(plan.names)}?" if n == 1
             else f"Delete {n:,} groups: {_names_of(plan.names)}?")
    text = _what_stays(n, plan.members)
    if plan.blocked:
        text += (f" {_plural(len(plan.blocked), 'other group')} cannot be deleted and will be "
                 "left as they are: " + " ".join(e.message for e in plan.blocked))
    query = list_context(form)["query"]
    fields = [("ids", i) for i in plan.ids] + list(query.items())
    return confirm(title, text, url_for(".bulk_delete"), f"Delete {_plural(n, 'group')}",
                   danger=True, back=url_for(".index", **query), fields=fields, target="#results")


# --- Add to Group (Users tab selection, User Details) ----------------------------------------


def _add_panel(form: AddToGroupForm, status: int = 200):
    """Render the Add to Group panel: the groups to choose from and who is selected."""
    actor = current_actor()
    form.group_ids.choices = group_options(users.group_choices(actor))
    try:
        selected, problem = users.count_selected(actor, form.selection()), None
        already = groups.already_in(actor, form.selection())
    except ServiceError as error:
        selected, problem, already = 0, error.message, {}
    # A whole page shows the users list under the panel.
    context = users_list_context(form) if not is_fragment_request() else {}
    return render("groups/add_to_group.html", "sidebar", status=status, add_form=form,
                  selected=selected, problem=problem, already=already, **context)


def _participation_response(membership_id: int, *, trigger: str | None = None, blocked=None,
                            message: str | None = None, category: str = "success"):
    """Answer User Details: its groups section, swapped out of band, plus the flash."""
    actor = current_actor()
    if not is_fragment_request():
        return answer("participation.html", message=message, category=category,
                      page_errors=[blocked.message] if blocked else (),
                      redirect_to=url_for("users.detail", membership_id=membership_id))
    return answer(
        "participation.html", "participates_in_oob", trigger=trigger, message=message,
        category=category, membership=users.get_user(actor, membership_id),
        participation=taskstreams.participates_in(actor, membership_id), blocked=blocked,
    )


@bp.route("/add-to-group", methods=["GET", "POST"])
@admin_required
def bulk_add_to_group():
    """Add to Group: pick groups (or name a new one) for the selected users, then add them."""
    if request.method == "GET":
        form = AddToGroupForm(request.args, meta={"csrf": False})
        form.validate()
        return _add_panel(form)
    form = AddToGroupForm()
    if not form.validate_on_submit():
        if form.origin.data == "detail":
            flash(UNREADABLE, "error")
            return redirect(url_for("users.index"))
        return rows_response(form, UNREADABLE, "error")
    try:
        result = groups.add_to_groups(current_actor(), form.group_ids.data or [],
                                      form.selection(), new_group_name=form.new_group.data or None)
    except ServiceError as error:
        apply_error(form, error)
        return _add_panel(form, status=422)
    message = added_message(result)
    if form.origin.data == "detail":
        [membership_id] = form.ids.data
        return _participation_response(membership_id, trigger="closeSidebar", message=message)
    return rows_response(form, message, block="rows_oob", trigger="closeSidebar")


@bp.post("/member/<int:membership_id>/remove")
@admin_required
def remove_from_user(membership_id: int):
    """User Details: take the user out of one group (the same rule as on the group's page)."""
    actor = current_actor()
    membership = users.get_user(actor, membership_id)
    form = RemoveFromGroupForm()
    blocked, message, category = None, UNREADABLE, "error"
    group = None
    if form.validate_on_submit():
        group, message = _group_or_gone(actor, form.group_id.data)
    if group is not None:
        if request.form.get("confirmed") != "y":
            return _confirm_removal(membership.user.name, group,
                                    url_for("users.detail", membership_id=membership.id),
                                    [("group_id", group.id)])
        blocked, message, category = _removal(
            lambda: groups.remove_from_group(actor, group.id, [membership.id]),
            lambda _removed: f"Removed {membership.user.name} from “{group.name}”.",
            in_use=None, gone=True)
    return _participation_response(membership.id, message=message, category=category,
                                   blocked=blocked)
