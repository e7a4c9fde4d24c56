"""The inbox's write forms. They check the shape of what was posted (a known status, a member's
id, a time in the future); what a reply may say is the services' rule (ReplyError)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from inbox.models import Session

# The morning hour the "tomorrow" and "next week" snoozes wake a conversation at.
SNOOZE_MORNING_HOUR = 9


class ClientTokenForm(forms.Form):
    """A form that writes once: its token, new with each rendering, finds the row a double
    submit already made."""

    client_token = forms.UUIDField(
        error_messages={
            "required": _("This form is out of date. Reload the page and send again."),
            "invalid": _("This form is out of date. Reload the page and send again."),
        }
    )


class ComposeForm(ClientTokenForm):
    """The composer: a reply to the peer or an internal note. The text is checked by the
    service (ReplyError), so that its words and limit are said in one place."""

    REPLY = "reply"
    NOTE = "note"

    kind = forms.ChoiceField(choices=[(REPLY, _("Reply")), (NOTE, _("Note"))], initial=REPLY)
    text = forms.CharField(required=False, strip=False)


class ImageReplyForm(ClientTokenForm):
    image = forms.FileField(error_messages={"required": _("Choose an image to send.")})


def snooze_presets(now: datetime | None = None) -> dict[str, datetime]:
    """The snooze menu's choices: in an hour, tomorrow morning, next Monday morning, as clock
    times in the inbox's time zone (settings.TIME_ZONE)."""
    local = timezone.localtime(now or timezone.now(), timezone.get_default_timezone())
    morning = {"hour": SNOOZE_MORNING_HOUR, "minute": 0, "second": 0, "microsecond": 0}
    tomorrow = (local + timedelta(days=1)).replace(**morning)
    next_monday = (local + timedelta(days=7 - local.weekday())).replace(**morning)
    return {"hour": local + timedelta(hours=1), "tomorrow": tomorrow, "next_week": next_monday}


class StatusForm(forms.Form):
    """Open, pending, resolved, or snoozed until a preset (`snooze`) or a chosen time (`until`,
    read in the inbox's time zone)."""

    status = forms.ChoiceField(choices=Session.Status.choices)
    snooze = forms.ChoiceField(
        required=False, choices=[(preset, preset) for preset in snooze_presets()]
    )
    until = forms.DateTimeField(required=False)

    def clean(self) -> dict:
        data = super().clean()
        if data.get("status") != Session.Status.SNOOZED:
            data["snooze_until"] = None
            return data
        if data.get("snooze"):
            until = snooze_presets()[data["snooze"]]
        elif data.get("until"):
            until = data["until"]
        elif "until" in self.errors:
            return data
        else:
            raise forms.ValidationError(_("Choose until when to snooze it."), code="required")
        if until <= timezone.now():
            raise forms.ValidationError(_("Choose a time in the future."), code="past")
        data["snooze_until"] = until
        return data


def assignable_users(session: Session, actor) -> QuerySet:
    """Who the session can go to: active members of its account, and the actor when a
    superuser."""
    return active_members(Q(finder_accounts=session.account_id), actor)


def active_members(members: Q, actor) -> QuerySet:
    """The active users `members` selects, by name, and the actor when a superuser (who may
    work on every account without being a member)."""
    if actor.is_superuser:
        members |= Q(pk=actor.pk)
    return (
        get_user_model()
        .objects.filter(members, is_active=True)
        .distinct()
        .order_by("first_name", "last_name", "username")
    )


class AssignForm(forms.Form):
    """A member's id, or empty for nobody."""

    assignee = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(),
        required=False,
        error_messages={"invalid_choice": _("Choose a member of this account.")},
    )

    def __init__(self, *args, session: Session, actor, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = assignable_users(session, actor)
