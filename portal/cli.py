"""Operator commands: thin wrappers that call services and report with click.echo."""
import os
import secrets
import select
import signal
import threading
from functools import wraps
from pathlib import Path

import click
import sqlalchemy as sa
from flask import Flask
from flask import current_app

from portal.extensions import db
from portal.services import accounts
from portal.services import csv_check
from portal.services import csv_encodings
from portal.services import csv_export
from portal.services import csv_import
from portal.services import import_history
from portal.services import deletion
from portal.services import jobs
from portal.services import leases
from portal.services import outbox
from portal.services import purge
from portal.services.errors import ServiceError


def service_errors(func):
    """Turn a ServiceError into a one-line ClickException (exit code 1)."""

    @wraps(func)
    def wrapped(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ServiceError as error:
            db.session.rollback()
            raise click.ClickException(error.message) from None

    return wrapped


@click.command("create-account")
@click.argument("name")
@click.option("--admin-email", required=True, help="E-mail of the first admin.")
@click.option("--admin-name", default=None, help="Full name of the first admin.")
@click.option("--password", default=None, help="Password of the first admin (prompted if omitted).")
@service_errors
def create_account_command(name, admin_email, admin_name, password):
    """Create an account and its first admin."""
    if password is None:
        password = click.prompt("Password for the first admin", hide_input=True,
                                confirmation_prompt=True)
    membership = accounts.create_account(
        name, admin_email=admin_email, admin_name=admin_name, password=password
    )
    click.echo(f"Created account {membership.account.name!r} with admin {membership.user.email}.")


@click.command("bootstrap")
@service_errors
def bootstrap_command():
    """Create a demo account and a first admin when the database has no account."""
    if accounts.has_accounts():
        click.echo("The database already has an account; nothing to do.")
        return
    from portal.services import demo

    password = secrets.token_urlsafe(12)
    membership = demo.seed(admin_password=password)
    base = current_app.config["BASE_URL"].rstrip("/")
    click.echo("")
    click.echo("  Participants Portal is ready. Sign in (this password is shown only once):")
    click.echo(f"    URL:      {base}/login?login_hint={membership.user.email}")
    click.echo(f"    E-mail:   {membership.user.email}")
    click.echo(f"    Password: {password}")
    click.echo("")


@click.command("seed-demo")
@click.option("--password", default=None, help="Password of the demo admin (generated if omitted).")
@service_errors
def seed_demo_command(password):
    """Create a demo account with about 50 users, 6 groups and 2 taskstreams."""
    from portal.services import demo

    password = password or secrets.token_urlsafe(12)
    membership = demo.seed(admin_password=password)
    click.echo(
        f"Created {membership.account.name!r}: admin {membership.user.email} "
        f"(password {password}), {demo.USERS} users, {len(demo.GROUPS)} groups, "
        f"{len(demo.TASKSTREAMS)} taskstreams."
    )


@click.group("accounts")
def accounts_group():
    """Operator settings of accounts."""


@accounts_group.command("set")
@click.argument("name")
@click.option("--device-limit", type=int, required=True, help="Live devices per person (1-20).")
@service_errors
def accounts_set_command(name, device_limit):
    """Set an account's device limit."""
    account = accounts.set_device_limit(name, device_limit)
    click.echo(f"Device limit of {account.name!r} is now {account.device_limit}.")


@click.group("users")
def users_group():
    """Users of an account: import, export, restore."""


@users_group.command("restore")
@click.argument("email")
@click.option("--account", "account_name", required=True, help="Name of the account.")
@service_errors
def users_restore_command(email, account_name):
    """Restore a deleted user within the retention period (membership, groups and role)."""
    actor = accounts.operator(account_name)
    deletion.restore_by_email(actor, email)
    click.echo(f"Restored {email.strip()} in {actor.account.name!r} with the groups and role it had.")


@click.command("purge")
@click.option("--dry-run", is_flag=True, help="Count what would be purged; change nothing.")
@click.option(
    "--now",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]),
    default=None,
    help="Act as if it were this moment (UTC); the default is the current time.",
)
@click.option("--batch", type=click.IntRange(min=1), default=purge.PURGE_BATCH,
              show_default=True, help="Memberships per transaction.")
@service_errors
def purge_command(dry_run, now, batch):
    """Hard-delete what is past retention, erase people left with no account, anonymise audit."""
    click.echo(str(purge.purge_expired(now=now, dry_run=dry_run, batch=batch)))
@users_group.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--account", "account_name", required=True, help="Name of the account.")
@click.option("--dry-run", is_flag=True, help="Show what would happen; write nothing.")
@click.option("--no-invite", is_flag=True, help="Send no invitation e-mails.")
@click.option("--update", is_flag=True,
              help="Update people already in the account: name, phone, groups to add.")
@click.option("--read-as", type=click.Choice(list(csv_encodings.READ_AS)), default=None,
              help="Read the CSV file in this encoding (default: as its bytes point to).")
@click.option("--rejected", type=click.File("wb"), default=None,
              help="Write the invalid rows, with a Reason column, to this CSV file.")
@service_errors
def users_import_command(file, account_name, dry_run, no_invite, update, read_as, rejected):
    """Import users from a CSV file or workbook: Full Name, Email, optionally Groups, Phone."""
    actor = accounts.operator(account_name)
    data = file.read()
    preview = csv_check.preview_csv(actor, data, read_as=read_as, update=update)
    click.echo(f"Read as {preview.format}.")
    if preview.ignored:
        click.echo(f"Ignored columns: {', '.join(preview.ignored)}.")
    click.echo(preview.summary())
    if preview.new_groups:
        click.echo(f"Groups that will be created: {', '.join(preview.new_groups)}.")
    for row in preview.rows:
        if row.status == csv_check.INVALID:
            click.echo(f"  line {row.line}: {row.email or row.name or '(empty)'}: {row.reason}")
        elif row.changes:
            changes = "; ".join(f"{what}: {old or '(empty)'} → {new}"
                                for what, old, new in row.changes)
            click.echo(f"  line {row.line}: {row.email}: {changes}")
        elif row.warnings:
            click.echo(f"  line {row.line}: {row.email}: {row.note}")
    if dry_run:
        click.echo("Dry run: nothing was written.")
        return
    result = csv_import.import_csv(actor, data, invite=not no_invite, source="cli",
                                   read_as=read_as, update=update,
                                   filename=Path(file.name).name)
    if rejected is not None:
        rejected.write(result.rejected_csv)
    click.echo(result.summary())


@users_group.command("imports")
@click.option("--account", "account_name", required=True, help="Name of the account.")
@service_errors
def users_imports_command(account_name):
    """List the account's imports, newest first (ids for undo-import)."""
    for line in import_history.list_imports(accounts.operator(account_name)):
        state = ("undone " + f"{line.undone_at:%Y-%m-%d %H:%M}" if line.undone_at
                 else "can be undone" if line.can_undo else "too old to undo")
        click.echo(f"{line.id}\t{line.created_at:%Y-%m-%d %H:%M}\t{line.actor_name}\t"
                   f"{line.filename}\t{line.summary}\t{state}")


@users_group.command("undo-import")
@click.argument("import_id", type=int)
@click.option("--account", "account_name", required=True, help="Name of the account.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@service_errors
def users_undo_import_command(import_id, account_name, yes):
    """Undo an import of the last 30 days: remove whom it added, put back what it changed."""
    actor = accounts.operator(account_name)
    plan = import_history.plan_undo(actor, import_id)
    click.echo(plan.summary())
    for blocked in plan.blocked:
        click.echo(f"  stays: {blocked.name}: {blocked.reason}")
    if not yes:
        click.confirm("Undo this import?", abort=True)
    click.echo(import_history.undo_import(actor, import_id).summary())


@users_group.command("export")
@click.option("--account", "account_name", required=True, help="Name of the account.")
@click.option("-o", "--output", type=click.File("wb"), default="-",
              help="File to write (default: stdout).")
@click.option("--include-deleted", is_flag=True, help="Add users deleted within retention.")
@service_errors
def users_export_command(account_name, output, include_deleted):
    """Export an account's users as CSV (the same file as the page's Export All Users)."""
    export = csv_export.export_users(accounts.operator(account_name),
                                     include_deleted=include_deleted)
    for chunk in export.chunks:
        output.write(chunk)
    output.flush()
    # On stderr, so that the CSV on stdout stays clean.
    noun = "user" if export.count == 1 else "users"
    click.echo(f"Exported {export.count:,} {noun} ({export.filename}).", err=True)


@click.group("outbox")
def outbox_group():
    """The e-mail queue."""


@outbox_group.command("deliver")
@click.option("--loop", is_flag=True, help="Keep delivering every few seconds until stopped.")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between rounds.")
@service_errors
def outbox_deliver_command(loop, interval):
    """Send the queued e-mails that are due."""
    if not outbox.smtp_configured():
        click.echo(
            f"No SMTP server configured (PORTAL_MAIL_SERVER); {outbox.pending_count()} "
            "messages stay in the outbox, readable by admins at /admin/outbox."
        )
        return
    stop = threading.Event()
    if loop:
        stop = stop_on_signals()
        click.echo(f"Outbox: delivering every {interval:g} s until TERM or Ctrl-C.")
    while True:
        report = outbox.deliver_all_due()
        if not loop or report.sent or report.failed or report.retrying:
            click.echo(f"Outbox: {report}.")
        if not loop:
            return
        db.session.remove()
        if stop.wait(interval):
            click.echo("Outbox: stopped.")
            return


@click.command("worker")
@click.option("--interval", default=2.0, show_default=True,
              help="Seconds between rounds when nothing is due.")
@click.option("--once", is_flag=True, help="One round (due jobs, due mail), then exit.")
@service_errors
def worker_command(interval, once):
    """Run the background work until TERM or Ctrl-C: jobs (CSV imports, bulk actions) and,
    when a mail server is set, the outbox."""
    stop = threading.Event() if once else stop_on_signals()
    name = leases.owner_name("worker")
    deliver = outbox.smtp_configured()
    click.echo(f"Worker: running jobs{' and delivering mail' if deliver else ''} "
               f"every {interval:g} s until TERM or Ctrl-C.")
    if not deliver:
        click.echo(f"No SMTP server configured (PORTAL_MAIL_SERVER); {outbox.pending_count()} "
                   "messages stay in the outbox, readable by admins at /admin/outbox.")
    while True:
        try:
            ran = jobs.run_due(name, stop)
            report = outbox.deliver_all_due(name) if deliver else outbox.DeliveryReport()
        except sa.exc.OperationalError as error:  # locked or unreachable: the next round retries
            db.session.rollback()
            click.echo(f"Worker: database busy or unreachable ({error.orig}); retrying.", err=True)
            ran, report = 0, outbox.DeliveryReport()
        if ran or report.sent or report.failed or report.retrying:
            click.echo(f"Worker: {ran} job{'' if ran == 1 else 's'} run; outbox: {report}.")
        db.session.remove()
        if once:
            return
        if stop.wait(interval):
            click.echo("Worker: stopped.")
            return


class SignalStop:
    """A stop flag that TERM or INT sets, safe to set from a signal handler.

    ``threading.Event.set()`` takes a lock that ``wait()`` holds for a moment in the same (main)
    thread: a signal landing in that moment deadlocks the process (Python's signal docs warn
    against locks in handlers; CPython issue 126434 is the same trap). Ctrl-C in ``make run``
    delivers two (INT from the terminal, TERM from scripts/serve.sh), so it happened. Here the
    handler sets a plain attribute and writes a byte to a pipe; ``wait`` sleeps in ``select``.
    """

    def __init__(self) -> None:
        self._set = False
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)

    def set(self) -> None:
        self._set = True
        try:
            os.write(self._write, b"x")
        except BlockingIOError:  # the pipe is full: it is readable already
            pass

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float) -> bool:
        if not self._set:
            select.select([self._read], [], [], timeout)
        return self._set


def stop_on_signals() -> SignalStop:
    """A flag that TERM or INT sets: the loop ends between rounds, never in the middle of one."""
    stop = SignalStop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


@outbox_group.command("list")
@click.option("--limit", default=50, show_default=True)
def outbox_list_command(limit):
    """Show the newest queued and sent e-mails."""
    messages = outbox.list_messages(limit=limit)
    if not messages:
        click.echo("The outbox is empty.")
    for m in messages:
        error = f"  ({m.last_error})" if m.last_error else ""
        click.echo(f"{m.id:>6}  {m.state:<8} {m.attempts}x  {m.to_addr:<32} {m.subject}{error}")


def register(app: Flask) -> None:
    """Add every command to the app's ``flask`` CLI."""
    from portal.cli_scim import scim_group

    app.cli.add_command(scim_group)
    for command in (
        create_account_command,
        bootstrap_command,
        seed_demo_command,
        accounts_group,
        users_group,
        outbox_group,
        worker_command,
        purge_command,
    ):
        app.cli.add_command(command)
