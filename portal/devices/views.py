"""Device lists and log out: for admins (User Details) and for people themselves (/account)."""
from flask import Blueprint
from flask import abort
from flask import flash
from flask import redirect
from flask import request
from flask import url_for
from flask_login import login_required

from portal.services import devices
from portal.services.errors import NotFound
from portal.services.errors import ServiceError
from portal.session import admin_required
from portal.session import current_actor
from portal.session import current_device
from portal.web import confirm
from portal.web import is_fragment_request
from portal.web import render
from portal.web import safe_next

bp = Blueprint("devices", __name__)


def _admin_list(membership_id, status: int = 200):
    # NotFound (another account's user among them) goes to the app's handler: 404 and the
    # refusal in the audit trail.
    listing = devices.devices_of(current_actor(), membership_id, current_device().id)
    return render("devices/user.html", "devices", listing=listing, membership_id=int(membership_id),
                  status=status)


@bp.route("/admin/participants/users/<membership_id>/devices")
@admin_required
def for_user(membership_id):
    """Show a user's devices (the User Details section as a page or fragment)."""
    return _admin_list(membership_id)


@bp.route("/admin/participants/users/<membership_id>/devices/<device_id>/logout",
          methods=["POST"])
@admin_required
def log_out(membership_id, device_id):
    """Log out one device of a user of this account, once the admin has confirmed it."""
    if request.form.get("confirmed") != "y":
        listing = devices.devices_of(current_actor(), membership_id, current_device().id)
        asked = _ask(listing, device_id, request.path, safe_next(request.form.get("next"))
                     or url_for("devices.for_user", membership_id=membership_id))
        if asked:
            return asked
    device = devices.revoke_device(current_actor(), membership_id, device_id)
    flash(f"{device.name} is logged out.", "success")
    if is_fragment_request():
        return _admin_list(membership_id)
    return redirect(
        safe_next(request.form.get("next"))
        or url_for("devices.for_user", membership_id=membership_id)
    )


def _ask(listing, device_id, action: str, back: str):
    """The question before a log out (a live device of this list), or None to go ahead."""
    row = next((row for row in listing.live if str(row.device.id) == str(device_id)), None)
    if row is None:
        return None  # the service answers: not found, or already logged out
    return confirm(f"Log out {row.device.name}?",
                   "It is signed out at once; whoever uses it has to sign in again.",
                   action, "Log out", back=back, fields=[("next", back)], danger=True,
                   target="#devices")


def _own_list():
    return render("devices/own.html", "devices", listing=devices.own_devices(current_device()))


@bp.route("/account/devices/<device_id>/logout", methods=["POST"])
@login_required
def log_out_own(device_id):
    """Log out another of one's own devices, once confirmed."""
    if request.form.get("confirmed") != "y":
        asked = _ask(devices.own_devices(current_device()), device_id, request.path,
                     url_for("auth.account_home"))
        if asked:
            return asked
    try:
        device = devices.log_out_own_device(current_device(), device_id)
    except NotFound:
        abort(404)
    except ServiceError as error:
        flash(error.message, "error")
    else:
        flash(f"{device.name} is logged out.", "success")
    return _own_list() if is_fragment_request() else redirect(url_for("auth.account_home"))


@bp.route("/account/devices/logout-others", methods=["POST"])
@login_required
def log_out_others():
    """Log out every one of one's devices but this one."""
    ended = devices.log_out_everywhere_else(current_device())
    flash(f"Logged out {ended} other device{'' if ended == 1 else 's'}.", "success")
    return _own_list() if is_fragment_request() else redirect(url_for("auth.account_home"))
