"""`flask scim token create|revoke|list`: SCIM tokens for operators (the page's twin)."""
import click

from portal.cli import service_errors
from portal.services import accounts
from portal.services import scim_tokens


@click.group("scim")
def scim_group():
    """SCIM provisioning (identity providers)."""


@scim_group.group("token")
def token_group():
    """Bearer tokens an identity provider provisions an account with."""


@token_group.command("create")
@click.option("--account", "account_name", required=True, help="Name of the account.")
@click.option("--name", default=None, help="Token name shown in the audit trail.")
@click.option("--send-invitations", is_flag=True,
              help="Send the invitation e-mail to people the token creates.")
@service_errors
def token_create_command(account_name, name, send_invitations):
    """Create a token and print it (shown only this once)."""
    actor = accounts.operator(account_name)
    token, raw = scim_tokens.create_token(actor, name, send_invitations=send_invitations)
    click.echo(f"Created SCIM token {token.name!r} for {actor.account.name!r} "
               f"(invitation e-mails {'on' if token.send_invitations else 'off'}); "
               "it is shown only now:", err=True)
    click.echo(raw)


@token_group.command("revoke")
@click.option("--account", "account_name", required=True, help="Name of the account.")
@click.option("--name", required=True, help="Name of the token(s) to revoke.")
@service_errors
def token_revoke_command(account_name, name):
    """Revoke the account's live tokens with this name."""
    actor = accounts.operator(account_name)
    revoked = scim_tokens.revoke_by_name(actor, name)
    click.echo(f"Revoked {len(revoked)} SCIM token{'' if len(revoked) == 1 else 's'} "
               f"named {name!r} in {actor.account.name!r}.")


@token_group.command("list")
@click.option("--account", "account_name", required=True, help="Name of the account.")
@service_errors
def token_list_command(account_name):
    """List the account's tokens (never the tokens themselves)."""
    for t in scim_tokens.list_tokens(accounts.operator(account_name)):
        used = t.last_used_at.strftime("%Y-%m-%d %H:%M") if t.last_used_at else "never"
        state = "revoked" if t.revoked_at else "live"
        click.echo(f"{t.id:>5}  {state:<8} {t.name:<30} last used {used}")
