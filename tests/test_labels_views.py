"""Labels through the inbox's pages: the thread's picker and its changes, chips in the list and
the thread, the sidebar's counts, the list filtered by labels, activity lines, who may do what,
and label names shown as text everywhere."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account
from accounts.sandbox import PEERS
from inbox import browse
from inbox import services as inbox_services
from inbox.labels import filtering, services
from inbox.labels.models import Label, SessionLabel
from inbox.models import Message, Session

HTMX = {"HTTP_HX_REQUEST": "true"}
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def session(synced) -> Session:
    return Session.objects.get(peer_username=PEERS[1].username)


@pytest.fixture
def other_account(db) -> Account:
    return Account.objects.create(name="Other shop", app_id="wx_other_labels", token="t")


@pytest.fixture
def labels(synced, other_account) -> dict[str, Label]:
    return {
        "shared": Label.objects.create(name="退款", colour="red"),
        "own": Label.objects.create(name="VIP", colour="purple", account=synced),
        "foreign": Label.objects.create(name="投诉", account=other_account),
    }


def change(client, session, **data):
    return client.post(reverse("inbox:labels_change", args=[session.pk]), data, **HTMX)


# --- the picker and its changes --------------------------------------------------------------


def test_the_picker_offers_the_shared_and_the_accounts_labels(member_client, session, labels):
    response = member_client.get(reverse("inbox:labels_picker", args=[session.pk]), **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "退款" in html and "VIP" in html
    assert "投诉" not in html
    assert 'role="listbox"' in html and 'aria-multiselectable="true"' in html


def test_picking_a_label_puts_it_on_with_an_activity_line_and_the_row(
    member_client, member, session, labels
):
    response = change(member_client, session, add=labels["shared"].pk)

    assert response.status_code == 200
    assert SessionLabel.objects.filter(session=session, label=labels["shared"]).exists()
    line = Message.objects.get(session=session, activity=Message.Activity.LABELED)
    assert line.author == member and line.activity_detail == "退款"
    html = response.content.decode()
    assert f'id="thread-labels-{session.pk}"' in html  # the header's chips, out of band
    assert f'id="message-{line.pk}"' in html  # the activity line
    assert f'id="session-{session.pk}"' in html  # the list's row, with the chip
    assert 'aria-selected="true"' in html
    assert "李四 added the label" in html or "李四 添加了标签" in html


def test_taking_a_label_off(member_client, member, session, labels):
    services.add_label(member, [session], labels["own"])
    response = change(member_client, session, remove=labels["own"].pk)
    assert response.status_code == 200
    assert not SessionLabel.objects.filter(session=session).exists()
    assert Message.objects.filter(session=session, activity=Message.Activity.UNLABELED).exists()


def test_picking_an_applied_label_again_changes_nothing(member_client, member, session, labels):
    services.add_label(member, [session], labels["shared"])
    response = change(member_client, session, add=labels["shared"].pk)
    assert response.status_code == 200
    assert Message.objects.filter(session=session, activity=Message.Activity.LABELED).count() == 1


def test_without_javascript_a_pick_redirects_to_the_thread(member_client, session, labels):
    response = member_client.post(
        reverse("inbox:labels_change", args=[session.pk]), {"add": labels["own"].pk}
    )
    assert response.status_code == 302
    assert response["Location"] == session.get_absolute_url()
    page = member_client.get(reverse("inbox:labels_picker", args=[session.pk]))
    assert page.status_code == 200 and "<html" in page.content.decode()


def test_a_non_member_gets_404_everywhere(client, outsider, session, labels):
    client.force_login(outsider)
    assert client.get(reverse("inbox:labels_picker", args=[session.pk])).status_code == 404
    assert change(client, session, add=labels["shared"].pk).status_code == 404
    assert not SessionLabel.objects.exists()


def test_a_label_of_another_account_cannot_be_applied(member_client, member, session, labels):
    assert change(member_client, session, add=labels["foreign"].pk).status_code == 404
    with pytest.raises(PermissionDenied):
        services.add_label(member, [session], labels["foreign"])
    superuser = User.objects.create_superuser("boss")
    with pytest.raises(PermissionDenied):
        services.add_label(superuser, [session], labels["foreign"])
    assert not SessionLabel.objects.exists()


def test_the_service_refuses_a_non_member(db, session, labels, outsider):
    with pytest.raises(PermissionDenied):
        services.add_label(outsider, [session], labels["shared"])
    assert list(services.usable_labels(outsider, session.account_id)) == []


@pytest.mark.parametrize(
    "data",
    [{}, {"add": "x"}, {"add": "1", "remove": "1"}, {"remove": "99999999999999999999"}],
)
def test_bad_input_is_400(member_client, session, labels, data):
    assert change(member_client, session, **data).status_code == 400


def test_wrong_method(member_client, session, labels):
    url = reverse("inbox:labels_change", args=[session.pk])
    assert member_client.get(url).status_code == 405


def test_agents_create_a_label_of_the_account_when_allowed(
    member_client, session, labels, settings
):
    settings.LABELS_AGENTS_CAN_CREATE = True
    response = change(member_client, session, name="  加急  ")
    assert response.status_code == 200
    label = Label.objects.get(name="加急")
    assert label.account_id == session.account_id
    assert SessionLabel.objects.filter(session=session, label=label).exists()
    # The same name in another case is the same label.
    change(member_client, session, name="VIP".lower())
    assert Label.objects.filter(name__iexact="vip").count() == 1


def test_agents_cannot_create_labels_when_not_allowed(member_client, session, labels, settings):
    settings.LABELS_AGENTS_CAN_CREATE = False
    assert change(member_client, session, name="加急").status_code == 404
    assert not Label.objects.filter(name="加急").exists()
    picker = member_client.get(reverse("inbox:labels_picker", args=[session.pk]), **HTMX)
    assert "data-label-create" not in picker.content.decode()


def test_a_too_long_name_is_400_with_the_reason(member_client, session, labels, settings):
    settings.LABELS_AGENTS_CAN_CREATE = True
    response = change(member_client, session, name="长" * 51)
    assert response.status_code == 400
    assert "50" in response.content.decode()


# --- chips, sidebar, filter ------------------------------------------------------------------


def test_chips_show_in_the_list_and_the_thread(member_client, member, session, labels):
    services.add_label(member, [session], labels["own"])
    listing = member_client.get(reverse("inbox:index")).content.decode()
    assert 'class="tag label-chip label-purple">VIP</span>' in listing
    thread = member_client.get(session.get_absolute_url(), **HTMX).content.decode()
    assert 'class="label-chip label-purple">VIP</span>' in thread


def test_the_sidebar_counts_open_conversations_per_label(member_client, member, synced, labels):
    sessions = list(Session.objects.filter(account=synced))
    services.add_label(member, sessions, labels["shared"])
    inbox_services.set_status(sessions[0], "resolved", member)
    response = member_client.get(reverse("inbox:index"))
    links = {link["label"].name: link["count"] for link in response.context["label_links"]}
    assert links == {"退款": len(sessions) - 1, "VIP": 0}


# Both plans: walking the list probing each session (0), reading the label's sessions (500).
@pytest.mark.parametrize("rare_below", [0, 500])
def test_the_list_filters_by_all_of_its_labels(
    member_client, member, synced, labels, monkeypatch, rare_below
):
    monkeypatch.setattr(filtering, "RARE_SESSIONS", rare_below)
    sessions = list(Session.objects.filter(account=synced).order_by("pk"))
    assert len(sessions) >= 3
    services.add_label(member, sessions[:2], labels["shared"])
    services.add_label(member, sessions[1:], labels["own"])
    index = reverse("inbox:index")

    def listed(*label_ids) -> set[int]:
        response = member_client.get(index, {"label": label_ids}, **HTMX)
        assert response.status_code == 200
        return {s.pk for s in response.context["sessions"]}

    assert listed(labels["shared"].pk) == {sessions[0].pk, sessions[1].pk}
    assert listed(labels["own"].pk) == {s.pk for s in sessions[1:]}
    assert listed(labels["shared"].pk, labels["own"].pk) == {sessions[1].pk}
    # The filter travels: load-more and the poll carry it, and the sidebar's views keep it.
    response = member_client.get(index, {"label": labels["shared"].pk})
    assert f"label={labels['shared'].pk}" in response.context["list_query"]
    assert f"label={labels['shared'].pk}" in response.context["view_links"][1]["url"]


def test_the_filtered_list_pages_by_keyset(member_client, member, synced, labels, monkeypatch):
    sessions = list(Session.objects.filter(account=synced))
    services.add_label(member, sessions, labels["shared"])
    monkeypatch.setattr(browse, "SESSION_PAGE", 2)
    index = reverse("inbox:index")
    first = member_client.get(index, {"label": labels["shared"].pk}, **HTMX)
    seen = [s.pk for s in first.context["sessions"]]
    cursor = first.context["next_cursor"]
    while cursor:
        page = member_client.get(index, {"label": labels["shared"].pk, "before": cursor}, **HTMX)
        html = page.content.decode()
        seen += [int(pk) for pk in re.findall(r'<a id="session-(\d+)"', html)]
        found = re.search(r"before=([0-9.]+)", html)
        cursor = found.group(1) if found else None
    assert sorted(seen) == sorted(s.pk for s in sessions)


def test_an_unknown_or_foreign_label_in_the_filter_is_404(member_client, labels):
    index = reverse("inbox:index")
    assert member_client.get(index, {"label": labels["foreign"].pk}).status_code == 404
    assert member_client.get(index, {"label": "x"}).status_code == 404
    assert member_client.get(index, {"label": [1, 2, 3, 4, 5, 6]}).status_code == 404


def test_a_labelled_session_moves_into_the_filtered_list_on_the_poll(
    member_client, member, session, labels
):
    since = browse.to_micros(timezone.now())
    services.add_label(member, [session], labels["shared"])
    response = member_client.get(
        reverse("inbox:sessions_poll"), {"since": since, "label": labels["shared"].pk}
    )
    assert response.status_code == 200
    assert [s.pk for s in response.context["moved"]] == [session.pk]
    assert 'label-chip label-red">退款' in response.content.decode()


# --- escaping --------------------------------------------------------------------------------


def test_a_hostile_label_name_is_text_everywhere(member_client, member, session, synced):
    hostile = Label.objects.create(name=HOSTILE, account=synced)
    services.add_label(member, [session], hostile)
    pages = [
        member_client.get(reverse("inbox:index")),  # sidebar and row chip
        member_client.get(reverse("inbox:index"), {"label": hostile.pk}),  # filter header
        member_client.get(session.get_absolute_url()),  # header chips and activity line
        member_client.get(reverse("inbox:labels_picker", args=[session.pk]), **HTMX),
        change(member_client, session, remove=hostile.pk),
    ]
    for response in pages:
        html = response.content.decode()
        assert HOSTILE not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_chips_and_counts_cost_the_same_queries_for_one_label_as_for_many(
    member_client, member, synced, labels
):
    index = reverse("inbox:index")
    member_client.get(index, **HTMX)
    with CaptureQueriesContext(connection) as bare:
        member_client.get(index, **HTMX)
    sessions = list(Session.objects.filter(account=synced))
    services.add_label(member, sessions, labels["shared"])
    services.add_label(member, sessions, labels["own"])
    for n in range(10):
        services.add_label(member, sessions, Label.objects.create(name=f"标签{n}"))
    with CaptureQueriesContext(connection) as labelled:
        html = member_client.get(index, **HTMX).content.decode()
    assert len(labelled) == len(bare)
    assert html.count("label-chip") >= 12 * len(sessions)
    # Load-more, the thread and its poll read chips with their sessions: no query of their own.
    thread = sessions[0].get_absolute_url()
    member_client.get(thread, **HTMX)
    with CaptureQueriesContext(connection) as opened:
        member_client.get(thread, **HTMX)
    assert not any("labels_" in q["sql"] and "inbox_session" not in q["sql"] for q in opened)
