"""Shapes of API request bodies, checked with WTForms (no CSRF: the API takes no cookies)."""
from wtforms import PasswordField
from wtforms import SelectField
from wtforms import StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired
from wtforms.validators import Length

from portal.forms import ApiForm
from portal.services.passwords import MAX_LENGTH

APP_KINDS = [SelectChoice("ipad", "iPad"), SelectChoice("iphone", "iPhone"),
             SelectChoice("app", "Other app")]


class SessionForm(ApiForm):
    email = StringField(validators=[DataRequired(), Length(max=254)])
    password = PasswordField(validators=[DataRequired(), Length(max=MAX_LENGTH)])
    device_id = StringField(validators=[DataRequired(), Length(max=120)])
    device_name = StringField(validators=[DataRequired(), Length(max=120)])
    kind = SelectField(choices=APP_KINDS, validators=[DataRequired()])
    app_version = StringField(validators=[DataRequired(), Length(max=40)])


class SecondFactorForm(ApiForm):
    """The second call of a two-step sign-in: the challenge id and a code."""

    challenge_id = StringField(validators=[DataRequired(), Length(max=100)])
    code = StringField(validators=[DataRequired(), Length(max=64)])
