"""Forms of /account/security and the second sign-in step: shape only (rules in the services)."""
from wtforms import PasswordField
from wtforms import StringField
from wtforms import SubmitField
from wtforms.validators import DataRequired
from wtforms.validators import Length
from wtforms.validators import Optional

from portal.forms import Form
from portal.services.passwords import MAX_LENGTH


class SecondStepForm(Form):
    code = StringField("Code", validators=[DataRequired("Enter a code."), Length(max=64)])
    submit = SubmitField("Continue")


class ConfirmTotpForm(Form):
    name = StringField("Name it (optional)", validators=[Optional(), Length(max=120)])
    code = StringField("Code from the app", validators=[DataRequired("Enter the code."),
                                                        Length(max=64)])
    submit = SubmitField("Add authenticator app")


class RemoveFactorForm(Form):
    password = PasswordField("Your password", validators=[DataRequired(), Length(max=MAX_LENGTH)])
    submit = SubmitField("Remove")


class PlainForm(Form):
    """A button that only needs the CSRF token."""

    submit = SubmitField("Continue")
