"""The Settings form: shape only (ranges and rules live in services.settings)."""
from wtforms import BooleanField
from wtforms import IntegerField
from wtforms import RadioField
from wtforms import StringField
from wtforms import SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired
from wtforms.validators import Length
from wtforms.validators import Optional

from portal.forms import Form


class SettingsForm(Form):
    password_min_length = IntegerField(
        "Minimum password length", validators=[InputRequired("Enter a number.")]
    )
    password_require_classes = BooleanField(
        "Also require an upper-case letter, a lower-case letter, a digit and a symbol"
    )
    second_factor_rule = RadioField(
        "Second factor",
        choices=[SelectChoice("off", "Optional for everyone"),
                 SelectChoice("admins", "Admins must use a second factor"),
                 SelectChoice("everyone", "Everyone must use a second factor")],
        validate_choice=False,  # services.settings checks it (and says so on the field)
    )
    invite_valid_hours = IntegerField(
        "Invitation links stay valid for (hours)", validators=[InputRequired("Enter a number.")]
    )
    sender_name = StringField("Sender name of e-mails", validators=[Optional(), Length(max=120)])
    submit = SubmitField("Save settings")
