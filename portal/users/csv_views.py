"""Import/Export on the Users tab: Import Users via CSV (upload, preview, run), the exports.

A nested blueprint of ``users`` (endpoints ``users.csv.*``): its screens live under the Users
tab's URL (DESIGN §4: /admin/participants/users/import and /export).
"""
from flask import Blueprint
from flask import Response
from flask import current_app
from flask import flash
from flask import redirect
from flask import request
from flask import url_for

from portal.selection import ListForm
from portal.selection import SelectionForm
from portal.selection import list_context
from portal.selection import rows_response
from portal.services import csv_check
from portal.services import csv_export
from portal.services import import_history
from portal.services import import_jobs
from portal.services import paging
from portal.services.errors import ServiceError
from portal.session import admin_required
from portal.session import current_actor
from portal.users.csv_forms import OptionsForm
from portal.users.csv_forms import RunForm
from portal.users.csv_forms import UndoForm
from portal.users.csv_forms import UploadForm
from portal.web import UNREADABLE
from portal.web import client_redirect
from portal.web import confirm
from portal.web import download
from portal.web import is_fragment_request
from portal.web import render

bp = Blueprint("csv", __name__)

PREVIEW_PAGE = 100
STATUS_FILTERS = {"all": "All", csv_check.NEW: "New",
                  csv_check.UPDATE: "To update", csv_check.SKIP: "Skipped",
                  csv_check.INVALID: "Invalid"}
TEMPLATE_CSV = (
    "Full Name,Email,Groups\r\n"
    "Ada Lovelace,ada@example.com,Engineering; Reviewers\r\n"
    "Grace Hopper,grace@example.com,Engineering\r\n"
)


def _download(export: csv_export.Export) -> Response:
    # The name is built by the server from the account and the date (safe ASCII, no quotes).
    return download(export.filename, export.chunks)


@bp.route("/import", methods=["GET", "POST"])
@admin_required
def import_upload():
    """Import Users via CSV: the sidebar with Browse CSV File; a valid file goes to its preview."""
    upload_form = UploadForm()
    if upload_form.validate_on_submit():
        upload = upload_form.file.data
        try:
            job = import_jobs.upload(current_actor(), upload.filename, upload.read())
        except ServiceError as error:
            upload_form.file.errors = [error.message]
        else:
            return redirect(url_for(".import_preview", job_id=job.id))
    status = 422 if upload_form.errors else 200
    return render("users/import.html", "sidebar", upload_form=upload_form, status=status,
                  **_limits(), **list_context(ListForm(request.args)))


def _limits() -> dict:
    cfg = current_app.config
    return {"max_mb": f"{cfg['MAX_CONTENT_LENGTH'] / 1_048_576:g}",
            "max_rows": f"{cfg['IMPORT_MAX_ROWS']:,}"}


@bp.route("/import/template.csv")
@admin_required
def import_template():
    """Download a CSV to fill in: the columns the import reads, with two example rows."""
    return Response(
        "\ufeff" + TEMPLATE_CSV,
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="users-template.csv"'},
    )


def _page_of(preview: csv_check.Preview) -> dict:
    """Return the rows of the preview page asked for (status filter, page number)."""
    shown = request.args.get("status", "all")
    if shown not in STATUS_FILTERS:
        shown = "all"
    rows = preview.rows if shown == "all" else [r for r in preview.rows if r.status == shown]
    return {"shown": shown,
            "page": paging.of_list(rows, request.args.get("page", 1, type=int), PREVIEW_PAGE)}


@bp.route("/import/<int:job_id>", methods=["GET", "POST"])
@admin_required
def import_preview(job_id: int):
    """Preview an uploaded file row by row; Import all / Import selected start the import.

    While it runs the page shows its progress (htmx polls the #job block); then its result.
    """
    actor = current_actor()
    form = RunForm()
    if form.validate_on_submit():
        try:
            import_jobs.start(actor, job_id, lines=form.chosen_lines(), invite=form.invite.data)
        except ServiceError as error:
            if error.status == 404:
                raise
            flash(error.message, "error")
        return redirect(url_for(".import_preview", job_id=job_id))
    job, state, preview = import_jobs.preview(actor, job_id)
    options = OptionsForm(formdata=None, read_as=job.read_as or "", update=job.update_existing)
    return render(
        "users/import_preview.html",
        "job",
        job=job,
        state=state,
        preview=preview,
        progress=import_jobs.progress(job),
        form=form,
        options=options,
        filters=STATUS_FILTERS,
        **(_page_of(preview) if preview is not None else {}),
    )


@bp.post("/import/<int:job_id>/options")
@admin_required
def import_options(job_id: int):
    """Read as … and Update existing users: the held file previewed again that way."""
    form = OptionsForm()
    if form.validate_on_submit():
        try:
            import_jobs.choose(current_actor(), job_id, read_as=form.encoding(),
                               update=form.update.data)
        except ServiceError as error:
            if error.status == 404:
                raise
            flash(error.message, "error")
    else:
        flash("Choose an encoding from the list.", "error")
    return redirect(url_for(".import_preview", job_id=job_id))


def _job_download(job_id: int, which: str) -> Response:
    filename, data = import_jobs.download(current_actor(), job_id, which)
    return Response(data, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.route("/import/<int:job_id>/rejected.csv")
@admin_required
def import_rejected(job_id: int):
    """Download rejected rows: the invalid rows of a finished import, with a Reason column."""
    return _job_download(job_id, "rejected")


@bp.route("/import/<int:job_id>/report.csv")
@admin_required
def import_job_report(job_id: int):
    """Download the import report of a finished import (every row and what became of it)."""
    return _job_download(job_id, "report")


@bp.route("/imports", endpoint="import_history")
@admin_required
def import_history_page():
    """Import history: every import of the account, its report, Undo import for 30 days."""
    return render("users/imports.html", imports=import_history.list_imports(current_actor()),
                  undo_days=import_history.UNDO_DAYS)


@bp.route("/imports/<int:import_id>/report.csv")
@admin_required
def import_report(import_id: int):
    """Download the report of an import of the history."""
    filename, data = import_history.report(current_actor(), import_id)
    return Response(data, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.route("/imports/<int:import_id>/undo", methods=["GET", "POST"])
@admin_required
def import_undo(import_id: int):
    """Undo import: the one confirmation (a dialog, or this page without JavaScript) says what
    it removes; the POST does it."""
    actor = current_actor()
    form = UndoForm()
    history = url_for(".import_history")
    try:
        if form.validate_on_submit():
            flash(import_history.undo_import(actor, import_id).summary(), "success")
            return client_redirect(history)
        plan = import_history.plan_undo(actor, import_id)
    except ServiceError as error:
        if error.status == 404:
            raise
        flash(error.message, "error")
        return client_redirect(history)
    if is_fragment_request():
        text = plan.summary()
        if plan.sample:
            text += f" Among them: {', '.join(plan.sample)}."
        if plan.blocked:
            text += " These stay, as for any delete: " + "; ".join(
                f"{b.name}: {b.reason}" for b in plan.blocked) + "."
        return confirm(f"Undo the import of {plan.record.filename}?", text, request.path,
                       "Undo import", danger=True, back=history)
    return render("users/import_undo.html", plan=plan, form=form)


@bp.route("/export")
@admin_required
def export():
    """Export All Users as CSV (with ?include_deleted=1 also those deleted within retention)."""
    include_deleted = request.args.get("include_deleted") == "1"
    return _download(csv_export.export_users(current_actor(), include_deleted=include_deleted))


@bp.post("/bulk/export")
@admin_required
def bulk_export():
    """Export to CSV: the selected users, or all matching the filter, as a download."""
    form = SelectionForm()
    if not form.validate_on_submit():
        return rows_response(form, UNREADABLE, "error")
    try:
        export_file = csv_export.export_users(current_actor(), form.selection())
    except ServiceError as error:
        return rows_response(form, error.message, "error")
    return _download(export_file)
