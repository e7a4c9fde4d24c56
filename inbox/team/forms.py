from __future__ import annotations

from django import forms

from inbox.team.models import Kind
from inbox.team.notifications import Channels

CHANNELS = ("in_app", "browser", "sound")


class PreferencesForm(forms.Form):
    """One checkbox per kind and channel (`new_letter__browser`); a browser notification or a
    sound needs the bell for that kind."""

    def __init__(self, *args, current: dict[str, Channels], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for kind in Kind:
            for channel in CHANNELS:
                self.fields[f"{kind.value}__{channel}"] = forms.BooleanField(
                    required=False, initial=getattr(current[kind], channel)
                )

    def rows(self) -> list[dict]:
        """The form as the page's table: a row per kind, a bound field per channel."""
        return [
            {
                "label": kind.label,
                "fields": [self[f"{kind.value}__{channel}"] for channel in CHANNELS],
            }
            for kind in Kind
        ]

    def channels(self) -> dict[str, Channels]:
        data = self.cleaned_data
        return {
            kind: Channels(*(data[f"{kind.value}__{channel}"] for channel in CHANNELS))
            for kind in Kind
        }
