"""The report's breakdown by label: conversations opened and resolved and first responses of the
sessions that carry each label, in the same fixed number of queries, names shown as text."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from inbox import services as inbox_services
from inbox.labels import services
from inbox.labels.models import Label
from inbox.models import Session
from inbox.reports.models import Episode

URL = reverse("inbox:reports")


def recent_session(synced) -> Session:
    """A session whose conversation opened in the last 30 days (the example page is older)."""
    recent = Episode.objects.filter(account=synced, opened_at__gte=timezone.now() - timedelta(1))
    return recent.order_by("pk").first().session


def test_the_report_breaks_down_by_label(member_client, member, synced):
    sessions = list(Session.objects.filter(account=synced).order_by("pk"))
    refund = Label.objects.create(name="退款")
    vip = Label.objects.create(name="<script>x</script>", account=synced)
    services.add_label(member, sessions, refund)
    resolved = recent_session(synced)
    services.add_label(member, [resolved], vip)
    inbox_services.set_status(resolved, "resolved", member)

    response = member_client.get(URL, {"range": "30d"})

    assert response.status_code == 200
    period = response.context["report"].period
    opened = Episode.objects.filter(
        session__in=sessions, opened_at__gte=period.start, opened_at__lt=period.end
    ).count()
    assert opened
    table = response.context["report"].tables["labels"]
    rows = {row[0]: row[1:] for row in table.rows}
    assert rows["退款"][0] == opened
    assert rows["退款"][1] == 1
    assert rows["<script>x</script>"][1] == 1
    html = response.content.decode()
    assert "<script>x</script>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html


def test_first_responses_count_under_the_label(member_client, member, synced):
    session = recent_session(synced)
    label = Label.objects.create(name="加急")
    services.add_label(member, [session], label)
    inbox_services.compose_reply(session, member, "好的", uuid.uuid4())
    response = member_client.get(URL, {"range": "30d", "time": "business"})
    assert response.status_code == 200
    rows = {row[0]: row[1:] for row in response.context["report"].tables["labels"].rows}
    assert rows["加急"][0] >= 1


def test_a_label_csv(member_client, member, synced):
    session = recent_session(synced)
    services.add_label(member, [session], Label.objects.create(name="退款"))
    response = member_client.get(URL, {"range": "30d", "export": "labels"})
    assert response.status_code == 200
    assert "退款" in b"".join(response.streaming_content).decode("utf-8-sig")
