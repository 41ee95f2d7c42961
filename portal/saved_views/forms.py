"""Forms of the saved views: shape only (the rules live in portal.services.saved_views)."""
from wtforms import BooleanField
from wtforms import HiddenField
from wtforms import StringField
from wtforms.validators import Length

from portal.forms import Form


class ViewForm(Form):
    """Save view and Rename: a name, and the list's current query (to mark the active view)."""

    # The service trims and checks 1–60 characters; the cap here only bounds what is read.
    name = StringField("Name", validators=[Length(max=200)])
    current = HiddenField(validators=[Length(max=2000)])


class DeleteViewForm(Form):
    """Delete a view, once the one confirmation was answered (confirmed=y)."""

    current = HiddenField(validators=[Length(max=2000)])
    confirmed = BooleanField()
