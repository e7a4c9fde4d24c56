"""Every inbox page, fragment and poll runs the same number of queries for 5 rows as for 50."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.sandbox import IMAGE_XML, Peer
from accounts.sandbox_media import finder_feed_xml
from inbox.models import Message, Session
from inbox.sync import sync_account
from tests.conftest import SANDBOX_APP_ID

BUSY = Peer("v2_busy_peer@finder", "常客")


def grow(sandbox, account, total: int) -> None:
    """Bring the account to `total` sessions with one letter each, plus one busy session with
    `total` letters (images and shared videos among them), through the sandbox and a real
    sync."""
    have = Session.objects.exclude(peer_username=BUSY.username).count()
    for n in range(have, total):
        sandbox.add_letter(SANDBOX_APP_ID, f"你好 {n}", peer=Peer(f"v2_p{n}@finder", f"客人{n}"))
    busy = Message.objects.filter(session__peer_username=BUSY.username).count()
    for n in range(busy, total):
        if n % 4 == 1:  # image letters: their stored pictures are read in one query per page
            xml = IMAGE_XML.format(
                key=f"{n:032d}", url=f"3057{n}", width=120, height=90, thumb_length=900,
                length=21600, hd_length=54000, md5=f"{n:032d}",
            )  # fmt: skip
            sandbox.add_letter(SANDBOX_APP_ID, xml, peer=BUSY, msg_type=3)
        elif n % 4 == 3:  # shared videos: their covers are read with the image letters' pictures
            xml = finder_feed_xml(
                f"busy-{n}", desc=f"视频 {n}", nickname="店", base_url=sandbox.base_url
            )
            sandbox.add_letter(SANDBOX_APP_ID, xml, peer=BUSY, msg_type=49)
        else:
            sandbox.add_letter(SANDBOX_APP_ID, f"你好，第 {n} 个问题", peer=BUSY)
    sync_account(account)
    # Some of the busy session's letters are notes by staff, to render authors too.
    busy_session = Session.objects.get(peer_username=BUSY.username)
    Message.objects.filter(session=busy_session, pk__in=_every_third(busy_session)).update(
        kind=Message.Kind.NOTE, author=User.objects.get(username="member")
    )


def _every_third(session: Session) -> list[int]:
    return list(session.messages.values_list("pk", flat=True))[::3]


def requests(client) -> dict[str, int]:
    """Queries per request, for every URL and variant."""
    busy = Session.objects.get(peer_username=BUSY.username)
    newest = busy.messages.order_by("-created_at", "-pk").first()
    oldest = busy.messages.order_by("created_at", "pk").first()
    index = client.get(reverse("inbox:index"))
    thread_url = busy.get_absolute_url()
    cases = {
        "index": lambda: client.get(reverse("inbox:index")),
        "index fragment": lambda: client.get(reverse("inbox:index"), HTTP_HX_REQUEST="true"),
        "index next page": lambda: client.get(
            reverse("inbox:index"), {"before": index.context["poll_top"]}, HTTP_HX_REQUEST="true"
        ),
        "unread view": lambda: client.get(reverse("inbox:index"), {"view": "unread"}),
        "thread": lambda: client.get(thread_url),
        "thread fragment": lambda: client.get(thread_url, HTTP_HX_REQUEST="true"),
        "thread older": lambda: client.get(
            thread_url, {"before": newest.pk}, HTTP_HX_REQUEST="true"
        ),
        "thread around": lambda: client.get(thread_url, {"around": oldest.pk}),
        "thread poll": lambda: client.get(
            reverse("inbox:thread_poll", args=[busy.pk]), {"since": "0", "tail": "1"}
        ),
        "sessions poll": lambda: client.get(reverse("inbox:sessions_poll"), {"since": "0"}),
        "search": lambda: client.get(reverse("inbox:search"), {"q": "你好"}),
        "search fragment": lambda: client.get(
            reverse("inbox:search"), {"q": "你好"}, HTTP_HX_REQUEST="true"
        ),
    }
    counts = {}
    for name, call in cases.items():
        # Reads are measured on a read thread: the first open marks it read, which is one query.
        call()
        with CaptureQueriesContext(connection) as captured:
            response = call()
        assert response.status_code in (200, 204), name
        counts[name] = len(captured)
    return counts


@pytest.fixture
def member_client(client, account):
    user = User.objects.create_user("member", password="pw")
    account.members.add(user)
    client.force_login(user)
    return client


def test_queries_do_not_grow_with_rows(member_client, account, sandbox):
    grow(sandbox, account, 5)
    few = requests(member_client)
    grow(sandbox, account, 50)
    many = requests(member_client)
    assert many == few
    # And they stay small: sign-in session and user, plus a handful (a thread's header adds
    # one for the assignee menu's members, the sidebar one for the labels and their counts and
    # one for the saved views with theirs, a page with image letters or shared videos one for
    # their stored pictures and covers, together).
    assert max(few.values()) <= 13, few


def test_pages_stay_within_their_budget(
    member_client, account, sandbox, django_assert_max_num_queries
):
    grow(sandbox, account, 50)
    busy = Session.objects.get(peer_username=BUSY.username)
    with django_assert_max_num_queries(10):
        member_client.get(reverse("inbox:index"))
    with django_assert_max_num_queries(12):
        member_client.get(busy.get_absolute_url())
    with django_assert_max_num_queries(5):
        member_client.get(reverse("inbox:search"), {"q": "你好"}, HTTP_HX_REQUEST="true")


def test_the_list_reads_its_counts_with_the_accounts_and_load_more_reads_none(
    member_client, account, sandbox, django_assert_num_queries
):
    grow(sandbox, account, 60)
    index = reverse("inbox:index")
    first = member_client.get(index)
    assert first.context["next_cursor"]
    # Sign-in session and user, the accounts with their counter sums, one page of rows (with
    # its label chips), the labels with their open counts, the saved views (none here; with
    # some, one more query reads the counter rows their counts are summed from).
    with django_assert_num_queries(6):
        member_client.get(index, {"view": "unread"}, HTTP_HX_REQUEST="true")
    # Load-more shows no counts: the accounts (for visibility) and the page.
    with django_assert_num_queries(4) as captured:
        member_client.get(index, {"before": first.context["next_cursor"]}, HTTP_HX_REQUEST="true")
    assert not any("inbox_sessioncounter" in query["sql"] for query in captured)
    # A poll with news reads the counters, never the sessions, for its counts (the sidebar's
    # labels too: one query; the saved views another, and without any, no counters for them).
    with django_assert_num_queries(6) as captured:
        member_client.get(reverse("inbox:sessions_poll"), {"since": "0"})
    assert sum("inbox_sessioncounter" in query["sql"] for query in captured) == 1
    assert not any(
        "SUM" in query["sql"] and '"inbox_session"' in query["sql"] for query in captured
    )
