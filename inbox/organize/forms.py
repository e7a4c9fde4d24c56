"""The bulk bar's form and the saved-view forms. They check the shape of what was posted; who may
change which conversation is the services' rule."""

from __future__ import annotations

from django import forms
from django.contrib.auth.models import AbstractBaseUser
from django.utils.translation import gettext_lazy as _

from inbox import browse
from inbox.forms import snooze_presets
from inbox.labels.models import Label
from inbox.labels.services import usable_labels
from inbox.models import Session
from inbox.organize import bulk_actions
from inbox.organize.bulk_actions import BulkAction
from inbox.organize.models import NAME_LENGTH


class SessionIdsField(forms.Field):
    """Repeated `sessions` ids (the rows' checkboxes): distinct primary keys, at most a batch."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {
        "required": _("Select at least one conversation."),
        "invalid": _("The selection holds something that is not a conversation."),
    }

    def to_python(self, value) -> list[int]:
        values = value or []
        if not all(isinstance(item, str) and browse.is_row_id(item) for item in values):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return sorted({int(item) for item in values})

    def validate(self, value: list[int]) -> None:
        super().validate(value)
        if len(value) > bulk_actions.MAX_BATCH:
            raise forms.ValidationError(
                _("Select at most %(limit)d conversations at a time."),
                code="max",
                params={"limit": bulk_actions.MAX_BATCH},
            )


SNOOZE_ACTIONS = {f"snooze_{preset}": preset for preset in ("hour", "tomorrow", "next_week")}
STATUS_ACTIONS = {
    "resolve": Session.Status.RESOLVED,
    "reopen": Session.Status.OPEN,
    "pending": Session.Status.PENDING,
}


class BulkActionForm(forms.Form):
    """The bulk bar: the selected ids, which button was pressed (`action`), and the argument
    some actions take (the assignee's or the label's select)."""

    ACTIONS = [
        ("resolve", _("Resolve")),
        ("reopen", _("Reopen")),
        ("pending", _("Mark pending")),
        ("snooze_hour", _("Snooze for an hour")),
        ("snooze_tomorrow", _("Snooze until tomorrow")),
        ("snooze_next_week", _("Snooze until next week")),
        ("assign", _("Assign")),
        ("assign_me", _("Assign to me")),
        ("unassign", _("Unassign")),
        ("read", _("Mark read")),
        ("label_add", _("Add label")),
        ("label_remove", _("Remove label")),
    ]

    sessions = SessionIdsField()
    action = forms.ChoiceField(
        choices=ACTIONS, error_messages={"invalid_choice": _("Choose an action.")}
    )
    # Named apart from the list filter's own `assignee` and `label`, which ride along.
    assign_to = forms.ModelChoiceField(
        queryset=None,
        required=False,
        error_messages={"invalid_choice": _("Choose a member of your accounts.")},
    )
    apply_label = forms.ModelChoiceField(
        queryset=Label.objects.none(),
        required=False,
        error_messages={"invalid_choice": _("Choose a label you can use.")},
    )

    def __init__(self, *args, actor: AbstractBaseUser, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.actor = actor
        self.fields["assign_to"].queryset = bulk_actions.assignable_users(actor)
        self.fields["apply_label"].queryset = usable_labels(actor)

    def clean(self) -> dict:
        data = super().clean()
        action = data.get("action")
        if action == "assign" and not data.get("assign_to") and "assign_to" not in self.errors:
            self.add_error("assign_to", _("Choose whom to assign them to."))
        labelling = action in ("label_add", "label_remove")
        if labelling and not data.get("apply_label") and "apply_label" not in self.errors:
            self.add_error("apply_label", _("Choose a label."))
        return data

    def bulk_action(self) -> BulkAction:
        """The service's action for the button pressed (call after is_valid())."""
        data = self.cleaned_data
        action = data["action"]
        if action in STATUS_ACTIONS:
            return BulkAction(bulk_actions.STATUS, status=STATUS_ACTIONS[action])
        if action in SNOOZE_ACTIONS:
            until = snooze_presets()[SNOOZE_ACTIONS[action]]
            return BulkAction(
                bulk_actions.STATUS, status=Session.Status.SNOOZED, snooze_until=until
            )
        if action == "assign":
            return BulkAction(bulk_actions.ASSIGN, assignee=data["assign_to"])
        if action == "assign_me":
            return BulkAction(bulk_actions.ASSIGN, assignee=self.actor)
        if action == "unassign":
            return BulkAction(bulk_actions.ASSIGN, assignee=None)
        if action == "read":
            return BulkAction(bulk_actions.MARK_READ)
        kind = bulk_actions.ADD_LABEL if action == "label_add" else bulk_actions.REMOVE_LABEL
        return BulkAction(kind, label=data["apply_label"])


class SavedViewForm(forms.Form):
    """A name and whether the team sees it; the filter comes from the list's own parameters."""

    name = forms.CharField(
        max_length=NAME_LENGTH,
        error_messages={
            "required": _("Give the view a name."),
            "max_length": _("A view's name has at most %(limit_value)d characters."),
        },
    )
    shared = forms.BooleanField(required=False)
