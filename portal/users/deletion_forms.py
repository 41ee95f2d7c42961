"""Forms of Delete and Deleted users: shape only (rules live in portal.services.deletion)."""
from wtforms import BooleanField
from wtforms import HiddenField
from wtforms import IntegerField
from wtforms import SelectMultipleField
from wtforms.validators import AnyOf
from wtforms.validators import Optional

from portal.forms import Form
from portal.selection import SelectionForm


class DeleteForm(SelectionForm):
    """Delete's selection, whether the admin confirmed it, and where it was asked from."""

    confirmed = BooleanField()
    # "detail" when User Details asked: the answer is then a page, not the list's rows.
    origin = HiddenField(validators=[Optional(), AnyOf(["", "detail"])])


class RestoreForm(Form):
    """Restore's choice: the checked deleted users, or the one whose own button was clicked."""

    ids = SelectMultipleField(coerce=int, validate_choice=False)
    one = IntegerField(validators=[Optional()])
    page = IntegerField(default=1, validators=[Optional()])

    def chosen(self) -> list[int]:
        """Return the membership ids to restore."""
        return [self.one.data] if self.one.data else list(self.ids.data or ())

    def page_number(self) -> int:
        return self.page.data if isinstance(self.page.data, int) and self.page.data > 0 else 1
