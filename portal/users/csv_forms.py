"""Forms of Import Users via CSV: shape only (the file's rules live in portal.services)."""
from flask_wtf.file import FileField
from flask_wtf.file import FileRequired
from wtforms import BooleanField
from wtforms import SelectField
from wtforms import SelectMultipleField
from wtforms import SubmitField
from wtforms.fields.choices import SelectChoice

from portal.forms import Form
from portal.services.csv_encodings import READ_AS


class UploadForm(Form):
    """The sidebar's Browse CSV File."""

    file = FileField("Browse CSV File", validators=[FileRequired("Choose a CSV file first.")])


class RunForm(Form):
    """The preview's Import all / Import selected, with the rows ticked on this page."""

    lines = SelectMultipleField(coerce=int, validate_choice=False)
    invite = BooleanField("Send invitation e-mails", default=True)
    import_all = SubmitField("Import all")
    import_selected = SubmitField("Import selected")

    def chosen_lines(self) -> list[int] | None:
        """Return the ticked line numbers, or None for Import all."""
        return None if self.import_all.data else list(self.lines.data or [])


class OptionsForm(Form):
    """The preview's Read as … (the held file again, in another encoding) and Update existing
    users."""

    read_as = SelectField("Read as", default="", choices=[SelectChoice("", "as detected")]
                          + [SelectChoice(name) for name in READ_AS])
    update = BooleanField("Update existing users (name, phone, groups to add)")

    def encoding(self) -> str | None:
        return self.read_as.data or None


class UndoForm(Form):
    """The confirmation of Undo import (its CSRF token only)."""
