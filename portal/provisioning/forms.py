"""The Provisioning forms: shape only (rules live in services.scim_tokens)."""
from wtforms import BooleanField
from wtforms import StringField
from wtforms.validators import Length
from wtforms.validators import Optional

from portal.forms import Form


class TokenForm(Form):
    name = StringField("Token name", validators=[Optional(), Length(max=120)])
    send_invitations = BooleanField("Send the invitation e-mail to people this token creates")

