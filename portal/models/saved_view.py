"""SavedView: a named query of the Users or Groups list, shared by the account's admins."""
import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.models.base import Base
from portal.models.base import Timestamped


class SavedView(Timestamped, Base):
    __tablename__ = "saved_views"
    # Names are unique per account and list, whatever their case (name_key is lower-cased).
    __table_args__ = (sa.UniqueConstraint("account_id", "list_name", "name_key"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    account_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    # Which list: "users" or "groups" (services/saved_views.py: LISTS).
    list_name: so.Mapped[str] = so.mapped_column(sa.String(20))
    name: so.Mapped[str] = so.mapped_column(sa.String(60))
    name_key: so.Mapped[str] = so.mapped_column(sa.String(60))
    # The list's normalised URL query string (the URL stays the source of truth).
    query: so.Mapped[str] = so.mapped_column(sa.String(1000))

    def __repr__(self) -> str:
        return f"<SavedView {self.id} {self.list_name} {self.name!r}>"
