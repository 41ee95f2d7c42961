"""Forms of Outgoing mail: shape only."""
from wtforms import SearchField
from wtforms import StringField

from portal.forms import Form
from portal.forms import int_or_none


class OutboxListForm(Form):
    """The list's query string: search, state, page (GET, no CSRF)."""

    class Meta:
        csrf = False

    q = SearchField("Search")
    state = StringField("State")
    page = StringField(default="1", filters=[int_or_none])
