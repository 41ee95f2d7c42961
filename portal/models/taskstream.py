"""Taskstream: a workflow of ordered steps, each assigned to a group."""
import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.models.base import Base
from portal.models.base import Timestamped
from portal.models.group import Group


class Taskstream(Timestamped, Base):
    __tablename__ = "taskstreams"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    account_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    name: so.Mapped[str] = so.mapped_column(sa.String(120))

    steps: so.Mapped[list["Step"]] = so.relationship(
        order_by="Step.position", cascade="all, delete-orphan", passive_deletes=True
    )


class Step(Base):
    __tablename__ = "steps"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    taskstream_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("taskstreams.id", ondelete="CASCADE"), index=True
    )
    position: so.Mapped[int]
    name: so.Mapped[str] = so.mapped_column(sa.String(120))
    # RESTRICT: a group assigned to a step cannot vanish under it.
    group_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("groups.id", ondelete="RESTRICT"), index=True
    )

    group: so.Mapped[Group | None] = so.relationship(lazy="joined")
