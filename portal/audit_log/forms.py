"""The audit page's query string: shape only (what a filter may name is the service's rule)."""
from wtforms import DateField
from wtforms import SearchField
from wtforms import SelectField
from wtforms import StringField
from wtforms.validators import Length
from wtforms.validators import Optional

from portal.forms import Form

DATE_MESSAGE = "Enter a date as YYYY-MM-DD."


class TrailForm(Form):
    """Who, whom, what, from, to, and the event a page starts after (GET, no CSRF)."""

    class Meta:
        csrf = False

    who = SearchField("Who", validators=[Optional(), Length(max=200)])
    whom = SearchField("Whom", validators=[Optional(), Length(max=200)])
    # The choices are the service's topics (set by the view); any other value is its error.
    what = SelectField("What", validate_choice=False, validators=[Optional(), Length(max=64)])
    since = DateField("From", validators=[Optional()], name="from",
                      invalid_value_message=DATE_MESSAGE)
    until = DateField("To", validators=[Optional()], name="to",
                      invalid_value_message=DATE_MESSAGE)
    # Cursors: the id of the event a page starts after (one not of this trail is ignored).
    before = StringField(validators=[Optional(), Length(max=20)])
    after = StringField(validators=[Optional(), Length(max=20)])

