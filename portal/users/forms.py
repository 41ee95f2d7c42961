"""Forms of the Users tab: shape only (rules live in portal.services)."""
from wtforms import BooleanField
from wtforms import EmailField
from wtforms import HiddenField
from wtforms import RadioField
from wtforms import SelectField
from wtforms import SelectMultipleField
from wtforms import StringField
from wtforms import SubmitField
from wtforms import TelField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired
from wtforms.validators import Length
from wtforms.validators import Optional

from portal.forms import ActionForm
from portal.forms import Form
from portal.forms import int_or_none
from portal.models import Role
from portal.services.profiles import REPORT_PERIODS


class ConfirmForm(ActionForm):
    """A button that asks first (web.confirm): ``confirmed`` is set once the question was answered."""

    confirmed = BooleanField()


class NewUserForm(Form):
    """New User (the sidebar): shape only; add_person checks the rules."""

    # Required and well-formed: checked by the service, all fields at once (the same words).
    name = StringField("Full Name", validators=[Length(max=200)])
    email = EmailField("Email", validators=[Length(max=254)])
    phone = TelField("Phone", validators=[Optional(), Length(max=40)])
    groups = SelectMultipleField("Groups", coerce=int)
    role = RadioField(
        "Role",
        choices=[SelectChoice(Role.MEMBER, "Member"), SelectChoice(Role.ADMIN, "Admin")],
        default=Role.MEMBER,
    )
    submit = SubmitField("Add user")


class ProfileForm(Form):
    """Edit a user's name, e-mail and phone; ``version`` is the one the form was read at."""

    # Required and well-formed: checked by the service, all fields at once (the same words).
    name = StringField("Full Name", validators=[Length(max=200)])
    email = EmailField("Email", validators=[Length(max=254)])
    phone = TelField("Phone", validators=[Optional(), Length(max=40)])
    version = HiddenField(filters=[int_or_none])
    submit = SubmitField("Save")


class RoleForm(Form):
    """Make a user an admin or a member."""

    role = RadioField(
        "Role",
        choices=[SelectChoice(Role.MEMBER, "Member"), SelectChoice(Role.ADMIN, "Admin")],
        validators=[DataRequired()],
    )
    submit = SubmitField("Change role")


class ActivityReportForm(Form):
    """Send activity report: the period it covers."""

    days = SelectField(
        "Period",
        choices=[SelectChoice(str(d), f"Last {d} days") for d in REPORT_PERIODS],
        coerce=int,
        default=30,
    )
    submit = SubmitField("Send activity report")
