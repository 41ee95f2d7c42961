"""Forms of the sign-in pages: shape only (rules live in the services)."""
from wtforms import EmailField
from wtforms import PasswordField
from wtforms import RadioField
from wtforms import StringField
from wtforms import SubmitField
from wtforms import TelField
from wtforms.validators import DataRequired
from wtforms.validators import EqualTo
from wtforms.validators import Length
from wtforms.validators import Optional

from portal.forms import Form
from portal.services.passwords import MAX_LENGTH


class LoginForm(Form):
    email = EmailField("E-mail", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=MAX_LENGTH)])
    submit = SubmitField("Sign in")


class ForgotPasswordForm(Form):
    email = EmailField("E-mail", validators=[DataRequired(), Length(max=254)])
    submit = SubmitField("Send reset link")


class NewPasswordForm(Form):
    password = PasswordField("New password", validators=[DataRequired(), Length(max=MAX_LENGTH)])
    confirm = PasswordField(
        "Repeat the password",
        validators=[DataRequired(), EqualTo("password", message="The two passwords differ.")],
    )
    submit = SubmitField("Set password")


class JoinForm(Form):
    """Accept an invitation with the password one already has (never a new one)."""

    password = PasswordField("Your password", validators=[DataRequired(), Length(max=MAX_LENGTH)])


class ChooseAccountForm(Form):
    account = RadioField("Account", coerce=int, validators=[DataRequired()])
    submit = SubmitField("Continue")


class LogoutForm(Form):
    submit = SubmitField("Sign out")


class ProfileForm(Form):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    phone = TelField("Phone", validators=[Optional(), Length(max=40)])
    submit = SubmitField("Save")


class ChangePasswordForm(Form):
    current_password = PasswordField(
        "Current password", validators=[DataRequired(), Length(max=MAX_LENGTH)]
    )
    password = PasswordField("New password", validators=[DataRequired(), Length(max=MAX_LENGTH)])
    confirm = PasswordField(
        "Repeat the new password",
        validators=[DataRequired(), EqualTo("password", message="The two passwords differ.")],
    )
    submit = SubmitField("Change password")
