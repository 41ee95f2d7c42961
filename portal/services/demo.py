"""Demo data: an account with users, groups and taskstreams, built through the services."""
import random

from portal.extensions import db
from portal.models import Membership
from portal.services import accounts
from portal.services import groups
from portal.services import invitations
from portal.services import taskstreams

USERS = 50
GROUPS = ["Field Team", "Reviewers", "Approvers", "Warehouse", "Drivers", "Office"]
TASKSTREAMS = {
    "Delivery round": [("Load van", "Warehouse"), ("Deliver", "Drivers"), ("Confirm", "Office")],
    "Site inspection": [("Inspect", "Field Team"), ("Review", "Reviewers"), ("Approve", "Approvers")],
}
FIRST = ["Ana", "Björn", "Chloé", "Dmitri", "Emeka", "Fatima", "Grégoire", "Hana", "Iñaki", "Jun",
         "Kofi", "Léa", "Mateus", "Nadia", "Oskar", "Priya", "Quentin", "Rūta", "Søren", "Tomás"]
LAST = ["Álvarez", "Berg", "Chen", "Dubois", "Eriksen", "Fischer", "García", "Huang", "Ivanova",
        "Jensen", "Kowalski", "López", "Müller", "Nakamura", "O'Brien", "Petrov", "Rossi", "Šimić"]


def seed(admin_password: str, name: str = "Demo Organisation") -> Membership:
    """Create the demo account and return its admin's membership."""
    rng = random.Random(7)
    admin = accounts.create_account(
        name, admin_email="admin@example.com", admin_name="Demo Admin", password=admin_password
    )
    made = [groups.create_group(admin, g) for g in GROUPS]
    by_name = {g.name: g.id for g in made}
    for number in range(USERS):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        membership = invitations.add_person(
            admin,
            name=f"{first} {last}",
            email=f"user{number + 1:02d}@example.com",
            group_ids=[g.id for g in rng.sample(made, rng.randint(0, 2))],
        )
        db.session.expire(membership)
    for stream, steps in TASKSTREAMS.items():
        taskstreams.create_taskstream(admin, stream, [(s, by_name[g]) for s, g in steps])
    return admin
