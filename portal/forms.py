"""What every form shares: its base (no text field lets control characters through) and the
pieces several areas use (group options, a page number, a bare action button).

Every form of the portal derives from ``Form`` (FlaskForm) or ``ApiForm`` (no CSRF: the API's
bodies). Their ``Meta.bind_field`` gives each text field one shared rule, whatever the form
declares:

- a search field (``SearchField``) drops control characters from the term (a NUL would end an
  SQLite FTS5 phrase early, and PostgreSQL refuses NUL in any text parameter);
- any other text field (names, e-mails, phones, hidden values…) is refused with a message when
  it holds one, so nothing stored or used keeps a NUL, a line break or a text-direction override;
- passwords are exempt: they are only hashed, and any character may be part of one.

"Control characters" are the set of portal/services/text.py (the services check it again for
what arrives without a form: SCIM, CSV, the command line).
"""
from flask_wtf import FlaskForm
from wtforms import Form as WTForm
from wtforms import PasswordField
from wtforms import SearchField
from wtforms import StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import StopValidation

from portal.services.text import CONTROL
from portal.services.text import drop_control
CONTROL_MESSAGE = (
    "Remove the invisible control characters (such as line breaks, tabs or text-direction "
    "marks) from this field."
)


def drop_control_characters(value):
    """Filter of search fields: the term without control characters (other values unchanged)."""
    return drop_control(value) if isinstance(value, str) else value


def refuse_control_characters(_form, field) -> None:
    """Validator of every other text field: a control character is a field error."""
    if isinstance(field.data, str) and CONTROL.search(field.data):
        raise StopValidation(CONTROL_MESSAGE)


class TextMeta:
    """Form Meta mixin that adds the rule above to every text field as it is bound."""

    def bind_field(self, form, unbound_field, options):
        field = super().bind_field(form, unbound_field, options)
        if isinstance(field, SearchField):
            field.filters = (*field.filters, drop_control_characters)
        elif isinstance(field, StringField) and not isinstance(field, PasswordField):
            # A fresh list: the declared one is shared by every instance of the form.
            field.validators = [refuse_control_characters, *field.validators]
        return field


class Form(FlaskForm):
    """Base of the pages' forms (CSRF as FlaskForm does it)."""

    class Meta(TextMeta, FlaskForm.Meta):
        pass


class ApiForm(WTForm):
    """Base of the API's request bodies (no CSRF: the API takes no cookies)."""

    class Meta(TextMeta, WTForm.Meta):
        pass


class ActionForm(Form):
    """A button that changes something (Reset Password, Resend Invite): only the CSRF token."""


def group_options(choices: list[tuple[int, str]], empty: str | None = None) -> list[SelectChoice]:
    """Return select options for (id, name) groups, led by an empty choice when given."""
    options = [SelectChoice("", empty)] if empty is not None else []
    return options + [SelectChoice(str(gid), name) for gid, name in choices]


def page_number(field) -> int:
    """Return a usable page number from a field (1 when absent or nonsense)."""
    return field.data if isinstance(field.data, int) and field.data > 0 else 1


def int_or_none(value):
    """Coerce a query-string value to an int; anything else becomes None."""
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
