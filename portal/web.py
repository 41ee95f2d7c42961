"""Web helpers: the one module that speaks htmx. Pages or fragments, form answers, errors.

No other module reads or writes an ``HX-*`` header (tests/test_architecture.py): views ask
``is_htmx()`` / ``is_fragment_request()`` and answer with ``render``, ``answer``,
``client_redirect`` or ``push_url`` (the shapes of django-htmx and flask-htmx).
"""
from collections.abc import Sequence
from urllib.parse import urlsplit

from flask import Response
from flask import flash
from flask import g
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import stream_with_context
from jinja2_fragments.flask import render_block
from jinja2_fragments.flask import render_blocks

from portal.services.errors import OutOfScope
from portal.services.errors import ServiceError

# The one answer to a form whose hidden fields or CSRF token did not survive (a stale page).
UNREADABLE = "The form could not be read; reload the page and try again."


def is_htmx() -> bool:
    """Tell whether htmx sent the request (boosted links and history restores too)."""
    return request.headers.get("HX-Request") == "true"


def is_fragment_request() -> bool:
    """Tell whether to answer with fragments: htmx asked, and not for a whole page."""
    return (
        is_htmx()
        and request.headers.get("HX-Boosted") != "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def render(
    template: str, *blocks: str, status: int = 200, flashes: bool = True, trigger: str | None = None,
    oob: Sequence[tuple[str, str]] = (), **context,
) -> Response:
    """Render the full page, or for htmx only ``blocks`` (plus the flashes out of band).

    ``oob`` adds (template, block) pairs rendered with the same context after the blocks: regions
    another template owns, swapped out of band (their block carries ``hx-swap-oob``).
    """
    if blocks and is_fragment_request():
        html = render_blocks(template, list(blocks), **context)
        html += "".join(render_block(name, block, **context) for name, block in oob)
        if flashes:
            # The flash region lives in base.html; _flashes.html swaps it out of band.
            html += render_block("_flashes.html", "flashes_oob")
        response = make_response(html, status)
        if trigger:
            response.headers["HX-Trigger"] = trigger
    else:
        response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    return response


def answer(
    template: str, *blocks: str, message: str | None = None, category: str = "success",
    status: int = 200, redirect_to: str | None = None, trigger: str | None = None,
    oob: Sequence[tuple[str, str]] = (), page_errors: Sequence[str] = (), **context,
) -> Response:
    """Answer a form action, the same way in every area.

    The message is flashed; htmx gets ``blocks`` with the flash out of band (and ``trigger``,
    e.g. ``closeSidebar``); a plain request is sent to ``redirect_to`` (POST → redirect → GET),
    or, when there is none (a refusal shown in place), gets the whole page with ``status``.
    ``page_errors`` are what the fragment shows in place (a blocked change with the links that
    fix it) and a redirected page can only flash.
    """
    if message:
        flash(message, category)
    if redirect_to is not None and not is_fragment_request():
        for error in page_errors:
            flash(error, "error")
        return redirect(redirect_to)
    return render(template, *blocks, status=status, trigger=trigger, oob=oob, **context)


def confirm(title: str, text: str, action: str, action_label: str, *, back: str,
            fields: Sequence[tuple[str, object]] = (), danger: bool = False,
            target: str = "#confirm") -> Response:
    """Ask before a destructive or mass action: the one confirmation (templates/_confirm.html).

    htmx gets a ``<dialog>`` for #confirm (static/portal.js opens it with showModal()); a plain
    POST gets the same question as a page. Its confirm button posts ``fields`` and
    ``confirmed=y`` to ``action`` (its htmx answer going to ``target``); ``back`` is Cancel
    without JavaScript. Nothing has changed until it is pressed.
    """
    return render("confirm.html", "confirm", flashes=False, title=title, text=text, action=action,
                  action_label=action_label, fields=list(fields), back=back, danger=danger,
                  target=target)


def download(filename: str, chunks, mimetype: str = "text/csv") -> Response:
    """Stream a file to the browser as an attachment (CSV exports).

    ``filename`` is built by the server (safe ASCII, no quotes); ``chunks`` are made lazily
    inside the request's context, so a million rows never sit in memory.
    """
    return Response(
        stream_with_context(chunks),
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def client_redirect(target: str, status: int = 204) -> Response:
    """Send the browser to ``target``: htmx follows HX-Redirect (a whole page), else Location.

    ``status`` is what htmx sees: 204 (nothing to swap) or, say, 401 for a lapsed session.
    """
    if not is_htmx():
        return redirect(target)
    response = make_response("", 204) if status == 204 else redirect(target)
    response.status_code = status
    response.headers["HX-Redirect"] = target
    return response


def push_url(response: Response, url: str) -> Response:
    """Have htmx put ``url`` in the address bar (for fragments; a page has its own)."""
    if is_fragment_request():
        response.headers["HX-Push-Url"] = url
    return response


def apply_error(form, error: ServiceError) -> None:
    """Show a ServiceError (and the others found with it) on its form field, or as a flash."""
    if isinstance(error, OutOfScope):
        record_refusal(error)
    for each in error.all:
        field = getattr(form, each.field, None) if each.field else None
        if field is not None:
            field.errors = list(field.errors) + [each.message]
        else:
            flash(each.message, "error")


def safe_next(target: str | None) -> str | None:
    """Accept only same-site relative paths as a redirect target."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def record_refusal(error: OutOfScope) -> None:
    """Write the audit event of a request refused for an id outside the actor's account.

    Called by the app's NotFound handling (and by a view that answers such a refusal itself):
    the service raised it knowing no HTTP; the route, method and address come from here.
    Whatever the refused request left in the session is discarded first.
    """
    from portal.session import current_actor
    from portal.extensions import db
    from portal.services import audit

    if g.get("refusal_recorded"):
        return  # one event per refused request, however often the view meets the id
    g.refusal_recorded = True
    db.session.rollback()
    actor = current_actor()
    if actor is None:
        return
    audit.access_refused(actor, route=request.path, method=request.method, kind=error.kind,
                         ident=error.ident, ip=request.remote_addr)
