"""The demo's first start puts a few labels on its conversations, through the service."""

from __future__ import annotations

from inbox.demo_history import make_history
from inbox.labels.models import LabelCounter, SessionLabel
from inbox.models import Message


def test_the_demo_history_has_labelled_conversations(account, member):
    assert make_history(account, [member], days=3, per_day=4) > 0
    assert SessionLabel.objects.filter(session__account=account).count() >= 2
    assert Message.objects.filter(activity=Message.Activity.LABELED, author=member).exists()
    assert LabelCounter.objects.filter(account=account, sessions__gt=0).exists()
