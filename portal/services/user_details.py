"""User Details: the screen's one read model, with what the admin may do there worked out here."""
from dataclasses import dataclass

from portal.models import AuditEvent
from portal.models import Invitation
from portal.models import InviteState
from portal.models import Membership
from portal.services import deletion
from portal.services import devices
from portal.services import invitations
from portal.services import people
from portal.services import profiles
from portal.services import second_factor_admin
from portal.services import taskstreams
from portal.services import users


@dataclass
class UserDetails:
    """One user of the account as the details page shows them, the can-do flags computed."""

    membership: Membership
    user: people.SeenPerson
    # The groups and the taskstreams reached through them (services.taskstreams.participates_in).
    participation: taskstreams.Participation
    activity: list[AuditEvent]
    devices: devices.DeviceList
    second_factor: second_factor_admin.SecondFactorSummary
    # Identity-level data only for people wholly inside accounts the admin administers.
    can_change_email: bool
    # Resend Invite while they have not signed in; Reset Password once they have a password.
    can_resend_invite: bool
    can_reset_password: bool
    # How long a deletion stays restorable (the danger zone says so).
    retention_days: int
    # Where the invitation stands (None: never invited), and since / until when.
    invitation: Invitation | None = None
    # Copy invitation link (an intranet without mail), and whether it first asks because it
    # stops a link that already went out.
    can_copy_link: bool = False
    copy_replaces_sent_link: bool = False

    @property
    def invitation_sent_at(self):
        return self.membership.invite_sent_at

    @property
    def invitation_note(self) -> str:
        """Where the invitation stands, in words with its times (empty once accepted)."""
        invitation, membership = self.invitation, self.membership
        if invitation in (None, Invitation.ACCEPTED):
            return ""
        if invitation == Invitation.REFUSED:
            return f"refused by the mail server: {membership.invite_error or 'no reply given'}"
        sent, until = membership.invite_sent_at, membership.invite_expires_at
        note = f"sent {sent:%Y-%m-%d %H:%M} UTC" if sent is not None else "queued, not sent yet"
        if invitation == Invitation.EXPIRED:
            return f"expired {until:%Y-%m-%d %H:%M} UTC ({note})"
        return f"{note}; the link works until {until:%Y-%m-%d %H:%M} UTC"

    @property
    def groups(self):
        return self.participation.groups


def user_details(actor, membership_id, *, device_id: int | None = None,
                 activity_limit: int = 20) -> UserDetails:
    """Return one user of the account with everything the details page shows and offers.

    ``device_id`` is the admin's own session, marked "this device" in the devices section.
    """
    membership = users.get_user(actor, membership_id)
    user = membership.user
    # Someone known elsewhere who has not accepted yet shows as any invitee does: no password,
    # no second factor, an e-mail this account may still correct.
    awaiting = membership.awaiting
    return UserDetails(
        membership=membership,
        user=people.SeenPerson.of(membership),
        participation=taskstreams.participates_in(actor, membership.id),
        activity=users.recent_activity(actor, membership, activity_limit),
        devices=devices.devices_of(actor, membership.id, device_id),
        second_factor=(second_factor_admin.SecondFactorSummary(False, False) if awaiting
                       else second_factor_admin.summary(actor, user)),
        can_change_email=awaiting or profiles.can_change_identity(actor, user),
        can_resend_invite=membership.invite_state != InviteState.ACTIVE,
        can_reset_password=not awaiting and user.password_hash is not None,
        retention_days=deletion.retention_days(),
        invitation=membership.invitation,
        can_copy_link=invitations.may_copy_link(membership),
        copy_replaces_sent_link=invitations.copy_replaces_sent_link(membership),
    )
