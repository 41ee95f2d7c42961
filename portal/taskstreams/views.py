"""Admin → Process Setup → Taskstreams: workflows whose ordered steps are assigned to groups."""
from flask import Blueprint
from flask import flash
from flask import redirect
from flask import request
from flask import url_for

from portal.forms import ActionForm
from portal.forms import page_number
from portal.services import taskstreams
from portal.services import users
from portal.services.errors import ServiceError
from portal.session import admin_required
from portal.session import current_actor
from portal.taskstreams.forms import AssignForm
from portal.taskstreams.forms import MoveForm
from portal.taskstreams.forms import NameForm
from portal.taskstreams.forms import PageForm
from portal.taskstreams.forms import StepForm
from portal.web import UNREADABLE
from portal.web import answer
from portal.web import apply_error
from portal.web import client_redirect
from portal.web import confirm
from portal.web import render

bp = Blueprint("taskstreams", __name__, url_prefix="/admin/taskstreams")


@bp.route("/", methods=["GET", "POST"])
@admin_required
def index():
    """List the taskstreams; POST creates one and opens it to add its steps."""
    actor = current_actor()
    form = NameForm() if request.method == "POST" else NameForm(formdata=None)
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                stream = taskstreams.create_taskstream(actor, form.name.data or "")
            except ServiceError as error:
                apply_error(form, error)
            else:
                flash(f"Created the taskstream “{stream.name}”; now add its steps.", "success")
                return redirect(url_for(".detail", taskstream_id=stream.id))
        status = 422
    page = taskstreams.list_taskstreams(actor, page_number(PageForm(request.args).page))
    return render("taskstreams/index.html", "results", status=status, page=page, form=form)


def _answer(stream_id: int, *, block: str = "steps", status: int = 200, done: bool = False,
            message: str | None = None, category: str = "success", **forms):
    """Answer on the taskstream page: the page, or for htmx the block of the form that was sent.

    A change that is ``done`` sends a plain request back to the page (POST → redirect → GET).
    """
    actor = current_actor()
    stream = taskstreams.get_taskstream(actor, stream_id)
    choices = users.group_choices(actor)
    context = {
        "stream": stream,
        "group_choices": choices,
        "rename_form": forms.pop("rename_form", None) or NameForm(name=stream.name),
        "step_form": (forms.pop("step_form", None) or StepForm(formdata=None)).with_groups(choices),
    }
    target = url_for(".detail", taskstream_id=stream_id) if done else None
    # A change of the steps changes the count in the head too.
    oob = (("taskstreams/detail.html", "stream_head_oob"),) if block == "steps" else ()
    return answer("taskstreams/detail.html", block, status=status, message=message,
                  category=category, redirect_to=target, oob=oob, **context)


@bp.route("/<int:taskstream_id>")
@admin_required
def detail(taskstream_id: int):
    """Show one taskstream: rename, delete, and its steps in order with their groups."""
    return _answer(taskstream_id)


@bp.post("/<int:taskstream_id>/rename")
@admin_required
def rename(taskstream_id: int):
    """Rename the taskstream."""
    form = NameForm()
    if form.validate_on_submit():
        try:
            stream = taskstreams.rename_taskstream(current_actor(), taskstream_id,
                                                   form.name.data or "")
        except ServiceError as error:
            if error.status == 404:
                raise
            apply_error(form, error)
        else:
            return _answer(taskstream_id, block="stream_head", done=True,
                           message=f"Renamed the taskstream to “{stream.name}”.")
    return _answer(taskstream_id, status=422, block="stream_head", rename_form=form)


@bp.post("/<int:taskstream_id>/delete")
@admin_required
def delete(taskstream_id: int):
    """Delete the taskstream and its steps, once confirmed."""
    back = url_for(".detail", taskstream_id=taskstream_id)
    if not ActionForm().validate_on_submit():
        return _answer(taskstream_id, block="stream_head_oob", status=422, message=UNREADABLE,
                       category="error")
    if request.form.get("confirmed") != "y":
        stream = taskstreams.get_taskstream(current_actor(), taskstream_id)
        steps = len(stream.steps)
        return confirm(f"Delete the taskstream “{stream.name}”?",
                       f"Its {steps} step{' goes' if steps == 1 else 's go'} with it; the groups "
                       "assigned to them and their members stay." if steps else
                       "It has no steps yet.",
                       request.path, "Delete taskstream", danger=True, back=back,
                       target="#stream_head")
    name = taskstreams.delete_taskstream(current_actor(), taskstream_id)
    flash(f"Deleted the taskstream “{name}”.", "success")
    return client_redirect(url_for(".index"))


@bp.post("/<int:taskstream_id>/steps")
@admin_required
def add_step(taskstream_id: int):
    """Append a step, assigned to a group or to none yet."""
    form = StepForm()
    if form.validate_on_submit():
        try:
            step = taskstreams.add_step(current_actor(), taskstream_id, form.name.data or "",
                                        form.group_id.data)
        except ServiceError as error:
            if error.status == 404:
                raise
            apply_error(form, error)
        else:
            return _answer(taskstream_id, done=True, message=f"Added the step “{step.name}”.")
    return _answer(taskstream_id, status=422, step_form=form)


def _step_change(taskstream_id: int, step_id: int, change):
    """Run one step change (move, remove, assign) and answer with the steps."""
    try:
        message = change(current_actor(), step_id)
    except ServiceError as error:
        if error.status == 404:
            raise
        return _answer(taskstream_id, status=422, message=error.message, category="error")
    return _answer(taskstream_id, done=True, message=message)


@bp.post("/<int:taskstream_id>/steps/<int:step_id>/move")
@admin_required
def move_step(taskstream_id: int, step_id: int):
    """Move a step one place up or down."""
    form = MoveForm()
    if not form.validate_on_submit():
        return _answer(taskstream_id, status=422, message=UNREADABLE, category="error")

    def move(actor, sid):
        step = taskstreams.move_step(actor, sid, -1 if form.direction.data == "up" else 1)
        return f"Moved “{step.name}” to place {step.position}."

    return _step_change(taskstream_id, step_id, move)


@bp.post("/<int:taskstream_id>/steps/<int:step_id>/remove")
@admin_required
def remove_step(taskstream_id: int, step_id: int):
    """Remove a step, once confirmed."""
    if request.form.get("confirmed") != "y":
        stream = taskstreams.get_taskstream(current_actor(), taskstream_id)
        step = next((s for s in stream.steps if s.id == step_id), None)
        if step is not None and ActionForm().validate_on_submit():
            return confirm(f"Remove the step “{step.name}” from “{stream.name}”?",
                           "The steps after it move up one place. Its group and their members "
                           "stay.", request.path, "Remove step", danger=True, target="#steps",
                           back=url_for(".detail", taskstream_id=taskstream_id))

    def remove(actor, sid):
        return f"Removed the step “{taskstreams.remove_step(actor, sid)}”."

    return _step_change(taskstream_id, step_id, remove)


@bp.post("/<int:taskstream_id>/steps/<int:step_id>/assign")
@admin_required
def assign_step(taskstream_id: int, step_id: int):
    """Assign a step to another group (or to none)."""
    form = AssignForm()
    if not form.validate_on_submit():
        return _answer(taskstream_id, status=422, message=UNREADABLE, category="error")

    def assign(actor, sid):
        step = taskstreams.assign_step(actor, sid, form.group_id.data)
        target = f"“{step.group.name}”" if step.group else "no group"
        return f"“{step.name}” is now assigned to {target}."

    return _step_change(taskstream_id, step_id, assign)
