"""Web helpers: the one place that reads htmx headers, renders pages or fragments, maps errors."""
from collections.abc import Sequence
from urllib.parse import urlsplit

from flask import Response
from flask import flash
from flask import get_flashed_messages
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from jinja2_fragments.flask import render_block
from jinja2_fragments.flask import render_blocks

from portal.services.errors import OutOfScope
from portal.services.errors import ServiceError


def is_fragment_request() -> bool:
    """Tell whether to answer with fragments: htmx asked, and not for a whole page."""
    return (
        request.headers.get("HX-Request") == "true"
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
            # The flash region lives in base.html, so it is rendered from there, out of band.
            html += render_block("base.html", "flashes", oob_flashes=True)
        response = make_response(html, status)
        if trigger:
            response.headers["HX-Trigger"] = trigger
    else:
        response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    return response


def full_page_redirect(target: str) -> Response:
    """Send the browser to ``target`` as a whole page (htmx: HX-Redirect instead of a swap)."""
    if is_fragment_request():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target)


def apply_error(form, error: ServiceError) -> None:
    """Show a ServiceError on its form field, or as a flash when it names none."""
    if isinstance(error, OutOfScope):
        record_refusal(error)
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = list(field.errors) + [error.message]
    else:
        flash(error.message, "error")


def pending_flashes() -> list[tuple[str, str]]:
    """Return and clear the flashed messages (category, text)."""
    return get_flashed_messages(with_categories=True)


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
    from portal.auth.session import current_actor
    from portal.extensions import db
    from portal.services import audit

    db.session.rollback()
    actor = current_actor()
    if actor is None:
        return
    audit.access_refused(actor, route=request.path, method=request.method, kind=error.kind,
                         ident=error.ident, ip=request.remote_addr)
