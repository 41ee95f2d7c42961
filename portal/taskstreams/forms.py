"""Forms of the Taskstreams page: shape only (rules live in portal.services.taskstreams)."""
from wtforms import IntegerField
from wtforms import SelectField
from wtforms import StringField
from wtforms.validators import AnyOf
from wtforms.validators import Length
from wtforms.validators import Optional

from portal.forms import Form
from portal.forms import group_options


def _group_id(value):
    """Coerce the group select: "" (no group) becomes None; nonsense too."""
    try:
        return int(value) if value not in (None, "", "None") else None
    except (TypeError, ValueError):
        return None


class NameForm(Form):
    """A taskstream's name (New Taskstream, Rename)."""

    name = StringField("Name", validators=[Length(max=120)])


class AssignForm(Form):
    """The group a step is assigned to (the account's groups, led by "no group yet")."""

    group_id = SelectField("Assigned to", coerce=_group_id, validate_choice=False)

    def with_groups(self, choices):
        """Offer the account's groups, given as (id, name)."""
        self.group_id.choices = group_options(choices, "No group yet")
        return self


class StepForm(AssignForm):
    """A new step: its name and the group it is assigned to."""

    name = StringField("Step", validators=[Length(max=120)])


class MoveForm(Form):
    direction = StringField(validators=[AnyOf(["up", "down"])])


class PageForm(Form):
    class Meta:
        csrf = False

    page = IntegerField(default=1, validators=[Optional()])
