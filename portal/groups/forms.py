"""Forms of the Groups tab and of Add to Group: shape only (rules live in portal.services)."""
from wtforms import HiddenField
from wtforms import IntegerField
from wtforms import SearchField
from wtforms import SelectMultipleField
from wtforms import StringField
from wtforms.validators import AnyOf
from wtforms.validators import Length
from wtforms.validators import Optional

from portal.forms import Form
from portal.selection import SelectionForm


class GroupListForm(Form):
    """The groups list's query string: search and page (GET, no CSRF)."""

    class Meta:
        csrf = False

    q = SearchField("Search", validators=[Optional(), Length(max=120)])
    page = IntegerField(default=1, validators=[Optional()])


class MemberListForm(Form):
    """A group page's query string: the members search and page, and the picker's search."""

    class Meta:
        csrf = False

    mq = SearchField("Search members", validators=[Optional(), Length(max=200)])
    page = IntegerField(default=1, validators=[Optional()])
    q = SearchField("Find people to add", validators=[Optional(), Length(max=200)])
    member_ids = SelectMultipleField(coerce=int, validate_choice=False)


class NewGroupForm(Form):
    """New Group: a name and the members picked so far (the picker's search rides along)."""

    name = StringField("Name", validators=[Length(max=120)])
    member_ids = SelectMultipleField("Members", coerce=int, validate_choice=False)
    q = SearchField("Members", validators=[Optional(), Length(max=200)])


class RenameForm(Form):
    name = StringField("Name", validators=[Length(max=120)])


class MembersForm(Form):
    """The members to add to, or remove from, one group."""

    member_ids = SelectMultipleField(coerce=int, validate_choice=False)
    q = SearchField("Find people to add", validators=[Optional(), Length(max=200)])


class DeleteGroupsForm(GroupListForm):
    """The checked groups, plus the list's query to come back to."""

    class Meta:
        csrf = True

    ids = SelectMultipleField(coerce=int, validate_choice=False)


class AddToGroupForm(SelectionForm):
    """Add to Group: the users' selection, the groups chosen, and perhaps a new group's name."""

    group_ids = SelectMultipleField("Groups", coerce=int, validate_choice=False)
    new_group = StringField("Or a new group", validators=[Optional(), Length(max=120)])
    # "detail" when User Details asked: the answer refreshes that page's groups, not the list.
    origin = HiddenField(validators=[Optional(), AnyOf(["", "detail"])])


class RemoveFromGroupForm(Form):
    """User Details: the group to take the user out of."""

    group_id = IntegerField()
