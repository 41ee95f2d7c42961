"""Group: a named set of memberships inside one account."""
import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.models.base import Base
from portal.models.base import Timestamped


class Group(Timestamped, Base):
    __tablename__ = "groups"
    __table_args__ = (sa.UniqueConstraint("account_id", "name_key"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    account_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    name: so.Mapped[str] = so.mapped_column(sa.String(120))
    # Lower-cased name: group names are unique per account case-insensitively.
    name_key: so.Mapped[str] = so.mapped_column(sa.String(120))
    # The user import that created it (UserImport.id; Undo import deletes it if left empty).
    import_id: so.Mapped[int | None]

    def __repr__(self) -> str:
        return f"<Group {self.id} {self.name!r}>"


class GroupMember(Timestamped, Base):
    __tablename__ = "group_members"

    group_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    membership_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("memberships.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    # The user import that added it (UserImport.id; Undo import removes it).
    import_id: so.Mapped[int | None]
