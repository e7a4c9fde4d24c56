from __future__ import annotations

from django import forms

from inbox.live import presence

TAB_PATTERN = r"^[A-Za-z0-9_-]{8,40}$"


class HeartbeatForm(forms.Form):
    """What a tab says every few seconds (static/inbox/live.js). Flags are sent as "1" or
    left out."""

    token = forms.CharField(max_length=2000)
    tab = forms.RegexField(TAB_PATTERN)
    active = forms.BooleanField(required=False)
    typing = forms.BooleanField(required=False)


class CloseTabForm(forms.Form):
    token = forms.CharField(max_length=2000)
    tab = forms.RegexField(TAB_PATTERN)


class StatusForm(forms.Form):
    status = forms.ChoiceField(
        choices=[(value, presence.LABELS[value]) for value in presence.CHOSEN]
    )
