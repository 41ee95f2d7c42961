"""Every model, imported here so Alembic's autogenerate sees the whole schema."""
from portal.models.account import Account
from portal.models.audit import AuditEvent
from portal.models.base import Base
from portal.models.base import utcnow
from portal.models.device import Device
from portal.models.device import DeviceKind
from portal.models.device import EndReason
from portal.models.group import Group
from portal.models.group import GroupMember
from portal.models.import_job import ImportJob
from portal.models.job import Job
from portal.models.membership import Invitation
from portal.models.membership import InviteState
from portal.models.membership import Membership
from portal.models.membership import Role
from portal.models.outbox import OutboxMessage
from portal.models.saved_view import SavedView
from portal.models.second_factor import RecoveryCode
from portal.models.second_factor import SecondFactor
from portal.models.second_factor import SignInChallenge
from portal.models.scim import ScimGroupLink
from portal.models.scim import ScimToken
from portal.models.scim import ScimUserLink
from portal.models.taskstream import Step
from portal.models.taskstream import Taskstream
from portal.models.token import ActionToken
from portal.models.token import TokenPurpose
from portal.models.user import User
from portal.models.user_import import UserImport
from portal.models import search  # noqa: F401  (triggers and search table with create_all)
from portal.models import pg_keys  # noqa: F401,I001  (after search: its keys include user_search's)

__all__ = [
    "Account",
    "ActionToken",
    "AuditEvent",
    "Base",
    "Device",
    "DeviceKind",
    "EndReason",
    "Group",
    "GroupMember",
    "ImportJob",
    "Invitation",
    "InviteState",
    "Job",
    "Membership",
    "OutboxMessage",
    "RecoveryCode",
    "SavedView",
    "Role",
    "SecondFactor",
    "SignInChallenge",
    "ScimGroupLink",
    "ScimToken",
    "ScimUserLink",
    "Step",
    "Taskstream",
    "TokenPurpose",
    "User",
    "UserImport",
    "utcnow",
]
