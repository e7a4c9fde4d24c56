"""Forms of the viewer panel."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from inbox.viewers.models import NOTE_MAX_LENGTH


class ViewerNoteForm(forms.Form):
    text = forms.CharField(
        max_length=NOTE_MAX_LENGTH,
        strip=True,
        error_messages={
            "required": _("Write something first: the note is empty."),
            "max_length": _(
                "A note can be at most %(limit_value)d characters (it has %(show_value)d)."
            ),
        },
    )


class ViewerLabelForm(forms.Form):
    """Put a label on the viewer, or take it off; `labels` are the ones the user may use."""

    label = forms.ModelChoiceField(
        queryset=None, error_messages={"invalid_choice": _("That label cannot be used here.")}
    )
    remove = forms.BooleanField(required=False)

    def __init__(self, *args, labels, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["label"].queryset = labels
