"""Forms of the Users tab: shape only (rules live in portal.services)."""
from wtforms import BooleanField
from wtforms import EmailField
from wtforms import HiddenField
from wtforms import RadioField
from wtforms import SelectField
from wtforms import SearchField
from wtforms import SelectMultipleField
from wtforms import StringField
from wtforms import SubmitField
from wtforms import TelField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired
from wtforms.validators import Length
from wtforms.validators import Optional

from portal.forms import Form
from portal.services.profiles import REPORT_PERIODS

from portal.services.users import SORTS
from portal.services.users import STATES
from portal.services.users import Selection
from portal.services.users import UserFilter

NAME_REQUIRED = "A name is required."
EMAIL_REQUIRED = "An e-mail address is required."
STATE_LABELS = {"invited": "Invited", "invite_failed": "Invite failed", "active": "Active"}


def group_options(choices: list[tuple[int, str]], empty: str | None = None) -> list[SelectChoice]:
    """Return select options for (id, name) groups, led by an empty choice when given."""
    options = [SelectChoice("", empty)] if empty is not None else []
    return options + [SelectChoice(str(gid), name) for gid, name in choices]


def _int_or_none(value):
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


class ListForm(Form):
    """The list's query string: search, group and state filters, sort, page (GET, no CSRF)."""

    class Meta:
        csrf = False

    q = SearchField("Search")
    group = StringField("Group", filters=[_int_or_none])
    state = StringField("State")
    sort = StringField(default="name")
    page = StringField(default="1", filters=[_int_or_none])

    def user_filter(self) -> UserFilter:
        """Return the filter these fields describe (unknown values are dropped)."""
        return UserFilter(
            q=(self.q.data or "")[:200],
            group_id=self.group.data if isinstance(self.group.data, int) else None,
            state=self.state.data if self.state.data in STATES else None,
        )

    def sort_key(self) -> str:
        return self.sort.data if self.sort.data in SORTS else "name"

    def page_number(self) -> int:
        return self.page.data if isinstance(self.page.data, int) and self.page.data > 0 else 1


class SelectionForm(ListForm):
    """What a bulk button posts: checked ids, or all_matching plus the filter; with CSRF.

    microblog's EmptyForm with the selection in it. Every bulk endpoint validates one of
    these and passes ``form.selection()`` to its service.
    """

    class Meta:
        csrf = True

    ids = SelectMultipleField(coerce=int, validate_choice=False)
    all_matching = BooleanField()

    def selection(self) -> Selection:
        """Return the portal.services.users.Selection this form describes."""
        return Selection(
            ids=tuple(self.ids.data or ()),
            all_matching=bool(self.all_matching.data),
            filter=self.user_filter(),
        )


class NewUserForm(Form):
    """New User (the sidebar): shape only; add_person checks the rules."""

    name = StringField("Full Name", validators=[DataRequired(NAME_REQUIRED), Length(max=200)])
    email = EmailField("Email", validators=[DataRequired(EMAIL_REQUIRED), Length(max=254)])
    phone = TelField("Phone", validators=[Optional(), Length(max=40)])
    groups = SelectMultipleField("Groups", coerce=int)
    role = RadioField(
        "Role",
        choices=[SelectChoice("member", "Member"), SelectChoice("admin", "Admin")],
        default="member",
    )
    submit = SubmitField("Add user")


class ProfileForm(Form):
    """Edit a user's name, e-mail and phone; ``version`` is the one the form was read at."""

    name = StringField("Full Name", validators=[DataRequired(NAME_REQUIRED), Length(max=200)])
    email = EmailField("Email", validators=[DataRequired(EMAIL_REQUIRED), Length(max=254)])
    phone = TelField("Phone", validators=[Optional(), Length(max=40)])
    version = HiddenField(filters=[_int_or_none])
    submit = SubmitField("Save")


class RoleForm(Form):
    """Make a user an admin or a member."""

    role = RadioField(
        "Role",
        choices=[SelectChoice("member", "Member"), SelectChoice("admin", "Admin")],
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


class ActionForm(Form):
    """A button that changes something (Reset Password, Resend Invite): only the CSRF token."""
