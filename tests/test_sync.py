"""inbox.sync against the sandbox upstream over real HTTP: pages → Session and Message rows,
exactly once, with the cursor committed together with each page."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.client import VideosApiClient
from accounts.models import Account
from accounts.sandbox import (
    EXAMPLE_ACCOUNT_FINDER,
    EXAMPLE_KEY_BUFF,
    EXAMPLE_PEER,
    EXAMPLE_SESSION,
    PEERS,
)
from inbox.models import Message, QuarantinedItem, Session
from inbox.payloads import ImageMeta, parse_sync_page
from inbox.sync import (
    CursorMoved,
    PageResult,
    SyncAlreadyRunning,
    SyncFailed,
    account_lease,
    store_page,
    sync_account,
)
from tests.conftest import SANDBOX_APP_ID, SANDBOX_TOKEN
from tests.test_payloads import BILLION_LAUGHS, EXTERNAL_ENTITY

SYNC = "/finder/syncPrivateLetterMsg"
# The sandbox serves the example's 5 letters, then a scripted 18 (10 a page): 3 pages.
UPSTREAM_LETTERS = 23
UPSTREAM_SESSIONS = 6
SCRIPT_TAG = "<script>alert('hi')</script>"


# --- helpers ---------------------------------------------------------------------------------


def cursor(account: Account) -> str:
    return Account.objects.values_list("key_buff", flat=True).get(pk=account.pk)


def upstream_log(sandbox) -> list[dict[str, Any]]:
    return sandbox.accounts[SANDBOX_APP_ID].letters


def upstream_ids(sandbox) -> list[int]:
    return sorted(item["content"]["msg"]["NewMsgId"] for item in upstream_log(sandbox))


def stored_ids(account: Account) -> list[int]:
    return sorted(Message.objects.filter(account=account).values_list("new_msg_id", flat=True))


def serve(sandbox, *items: Any) -> None:
    """Make the sandbox deliver these items (as they are) after what it has already."""
    with sandbox.lock:
        upstream_log(sandbox).extend(items)


def snapshot(account: Account, *, times: bool = True) -> dict[str, Any]:
    """Everything a sync writes for `account`, comparable between runs. Without `times`, the
    wall-clock stamps of when rows were written are left out (to compare two separate runs)."""
    stamps = ["pk", "stored_at", "updated_at"] if times else []
    messages = list(
        Message.objects.filter(account=account)
        .order_by("new_msg_id")
        .values(
            "new_msg_id",
            "session__msg_session_id",
            "msg_id",
            "msg_seq",
            "seq",
            "msg_type",
            "is_sender",
            "from_username",
            "to_username",
            "content",
            "created_at",
            "msg_source",
            "ext_info",
            "sub_type",
            "sync_key_type",
            "item_type",
            "upstream_status",
            "img_status",
            "image_meta",
            "title",
            "app_type",
            "raw",
            "parse_error",
            *stamps,
        )
    )
    sessions = list(
        Session.objects.filter(account=account)
        .order_by("msg_session_id")
        .values(
            "msg_session_id",
            "peer_username",
            "my_username",
            "last_message_at",
            "last_message_preview",
            "last_message_type",
            "unread_count",
            "status",
            *(["pk", "updated_at", "created_at"] if times else []),
        )
    )
    quarantined = sorted(
        QuarantinedItem.objects.filter(account=account).values_list("fingerprint", "error")
    )
    return {"messages": messages, "sessions": sessions, "quarantined": quarantined}


def store(account: Account, items: list[Any], key_buff: str = "next") -> PageResult:
    """Store `items` as one page the way a pass does: holding the lease, from the stored cursor."""
    page = parse_sync_page({"list": items, "keyBuff": key_buff})
    with account_lease(account) as lease:
        return store_page(account, page, lease_token=lease, expected=cursor(account))


class OnPage(VideosApiClient):
    """The real client over real HTTP, with a hook run just before the pass fetches page
    `page` (to inject a sandbox fault, or to act as a competing worker), and optionally a
    reshaping of what the upstream answered for that page."""

    def __init__(
        self,
        account: Account,
        *,
        page: int = 2,
        before: Callable[[], None] | None = None,
        reshape: Callable[[Any], Any] | None = None,
    ):
        super().__init__(
            base_url=account.effective_base_url, token=account.token, app_id=account.app_id
        )
        self.page, self.before, self.reshape, self.fetched = page, before, reshape, 0

    def sync_private_letters(self, key_buff: str) -> Any:
        self.fetched += 1
        if self.fetched == self.page and self.before:
            self.before()
        data = super().sync_private_letters(key_buff)
        if self.fetched == self.page and self.reshape:
            return self.reshape(data)
        return data


@pytest.fixture
def bare_upstream(sandbox):
    """The test account at the sandbox with an empty log (no example, no script)."""
    sandbox.add_account(SANDBOX_APP_ID, SANDBOX_TOKEN, example=False, script=False)
    return sandbox


@pytest.fixture
def clean_run(account, sandbox) -> dict[str, Any]:
    """What a pass without faults stores from the sandbox; the account is emptied afterwards so
    the test can store the same upstream log again its own way and compare."""
    sync_account(account)
    expected = snapshot(account, times=False)
    Message.objects.filter(account=account).delete()
    Session.objects.filter(account=account).delete()
    QuarantinedItem.objects.filter(account=account).delete()
    Account.objects.filter(pk=account.pk).update(key_buff="", last_success_at=None)
    account.refresh_from_db()
    with sandbox.lock:
        sandbox.calls.clear()
    return expected


# --- a first pass ----------------------------------------------------------------------------


def test_first_pass_stores_every_upstream_letter_once_and_catches_up(account, sandbox):
    result = sync_account(account)

    assert (result.pages, result.new_messages, result.new_sessions, result.quarantined) == (
        3,
        UPSTREAM_LETTERS,
        UPSTREAM_SESSIONS,
        0,
    )
    assert result.caught_up
    assert stored_ids(account) == upstream_ids(sandbox)
    assert Session.objects.filter(account=account).count() == UPSTREAM_SESSIONS
    key_buffs = [call["body"]["keyBuff"] for call in sandbox.calls_to(SYNC)]
    assert key_buffs[:2] == ["", EXAMPLE_KEY_BUFF]
    assert len(key_buffs) == 4  # three pages and the empty one that says "caught up"
    assert cursor(account) == sandbox.calls_to(SYNC)[-1]["body"]["keyBuff"]
    account.refresh_from_db()
    assert account.last_success_at is not None
    assert (account.failure_streak, account.last_error, account.sync_lease_token) == (0, "", "")
    assert account.next_sync_at > timezone.now()


def test_example_letter_is_stored_field_by_field(account, sandbox, example_response):
    sync_account(account)

    message = Message.objects.select_related("session").get(new_msg_id=243683914400108300)

    assert message.new_msg_id == 243683914400108300
    assert (message.msg_id, message.msg_seq, message.seq) == (3, 3, 3)
    assert message.msg_type == Message.Type.TEXT
    assert message.kind == Message.Kind.LETTER
    assert message.delivery == Message.Delivery.RECEIVED
    assert message.is_sender is True
    assert message.from_username == EXAMPLE_ACCOUNT_FINDER
    assert message.to_username == EXAMPLE_PEER
    assert message.content == "文本"
    assert message.created_at == datetime(2024, 1, 24, 8, 27, 20, tzinfo=UTC)
    assert message.msg_source == ""
    assert message.ext_info == "CAIQAw=="
    assert (message.sub_type, message.sync_key_type, message.item_type) == (2, 5, 1)
    assert (message.upstream_status, message.img_status) == (3, 1)
    assert message.image is None
    assert message.parse_error == ""
    assert message.raw == example_response["data"]["list"][2]
    assert message.session.msg_session_id == EXAMPLE_SESSION
    assert message.account_id == account.pk


def test_example_new_msg_ids_are_stored_exactly(account, sandbox, example_response):
    sync_account(account)
    example_ids = [item["content"]["msg"]["NewMsgId"] for item in example_response["data"]["list"]]

    stored = Message.objects.filter(new_msg_id__in=example_ids).values_list("new_msg_id", flat=True)

    assert sorted(stored) == sorted(example_ids)
    assert 5871873953492479000 in stored
    assert 7744705344788547000 in stored


def test_example_image_message_has_its_thumbnail_metadata_after_sync(account, sandbox):
    sync_account(account)

    message = Message.objects.get(new_msg_id=7744705344788547000)

    assert message.msg_type == Message.Type.IMAGE
    assert isinstance(message.image, ImageMeta)
    assert (message.image.thumb_width, message.image.thumb_height) == (120, 120)
    assert message.image.thumb_length == 1315
    assert message.image.md5 == "704de7ebbc107a51a4f0986253a6d3b6"
    assert (message.image.length, message.image.hd_length) == (22001, 1096)
    assert (
        message.image.aes_key == message.image.thumb_aes_key == ("38bd282fa5b21a42590269084f95975f")
    )
    assert message.image.thumb_url.startswith("3057020100044b3049")
    assert message.image.mid_url == message.image.big_url == message.image.thumb_url
    assert message.img_status == 2


def test_sessions_get_their_peer_unread_count_and_latest_letter(account, sandbox):
    sync_account(account)
    by_session: dict[str, list[dict]] = defaultdict(list)
    for item in upstream_log(sandbox):
        by_session[item["content"]["msgSessionId"]].append(item)

    for session in Session.objects.filter(account=account):
        items = by_session[session.msg_session_id]
        latest = max(items, key=lambda i: (i["content"]["msg"]["CreateTime"], i["content"]["seq"]))
        latest_msg = latest["content"]["msg"]

        # The account's newest reply (here or from the phone) read the peer's letters before it.
        def position(item):
            return (item["content"]["msg"]["CreateTime"], item["content"]["seq"])

        answered = max((position(i) for i in items if i["content"]["isSender"]), default=None)
        assert session.unread_count == sum(
            1
            for i in items
            if not i["content"]["isSender"] and (answered is None or position(i) > answered)
        )
        assert session.last_message_at == datetime.fromtimestamp(latest_msg["CreateTime"], UTC)
        assert session.last_message_type == latest_msg["MsgType"]
        if latest_msg["MsgType"] == 1:
            assert session.last_message_preview == " ".join(latest_msg["Content"]["string"].split())
        assert session.status == Session.Status.OPEN

    example = Session.objects.get(msg_session_id=EXAMPLE_SESSION)
    assert (example.peer_username, example.my_username) == (EXAMPLE_PEER, EXAMPLE_ACCOUNT_FINDER)


def test_a_second_pass_stores_nothing_and_changes_nothing(account, sandbox):
    sync_account(account)
    before = snapshot(account)

    result = sync_account(account)

    assert (result.pages, result.new_messages, result.caught_up) == (0, 0, True)
    assert snapshot(account) == before


def test_a_pass_stops_at_its_page_cap_and_the_next_one_goes_on(account, sandbox):
    first = sync_account(account, max_pages=1)

    assert (first.pages, first.new_messages, first.caught_up) == (1, 5, False)
    assert first.summary().endswith("more to fetch")
    assert cursor(account) == EXAMPLE_KEY_BUFF

    rest = sync_account(account)

    assert (rest.pages, rest.new_messages, rest.caught_up) == (2, UPSTREAM_LETTERS - 5, True)
    assert stored_ids(account) == upstream_ids(sandbox)


def test_a_new_letter_after_catching_up_bumps_unread_and_reopens_the_session(account, sandbox):
    sync_account(account)
    session = Session.objects.get(msg_session_id=EXAMPLE_SESSION)
    Session.objects.filter(pk=session.pk).update(status=Session.Status.RESOLVED, unread_count=0)
    sandbox.add_letter(SANDBOX_APP_ID, "  还在吗？\n想问一下  ", peer=PEERS[0])

    result = sync_account(account)

    session.refresh_from_db()
    assert result.new_messages == 1
    assert session.unread_count == 1
    assert session.status == Session.Status.OPEN
    assert session.last_message_preview == "还在吗？ 想问一下"
    assert session.last_message_at > timezone.now() - timedelta(minutes=1)


def test_a_reply_written_on_the_phone_reads_the_letters_before_it(account, sandbox):
    sync_account(account)
    session = Session.objects.get(msg_session_id=EXAMPLE_SESSION)
    sandbox.add_letter(SANDBOX_APP_ID, "在吗？", peer=PEERS[0])
    sync_account(account)
    assert Session.objects.get(pk=session.pk).unread_count > 0

    sandbox.add_letter(SANDBOX_APP_ID, "好的，已为您登记", peer=PEERS[0], is_sender=True)
    sync_account(account)
    updated = Session.objects.get(pk=session.pk)
    assert updated.unread_count == 0
    assert updated.last_message_preview == "好的，已为您登记"

    # The peer writes again after the answer: that letter is unread.
    sandbox.add_letter(SANDBOX_APP_ID, "谢谢", peer=PEERS[0])
    sync_account(account)
    assert Session.objects.get(pk=session.pk).unread_count == 1


def test_a_preview_with_quotes_braces_and_backslashes_is_stored_as_written(
    account, bare_upstream, make_item
):
    text = "a \"quoted\", {braced} \\back\\slash\\ 'single' NULL ,; 表情 👍"
    store(account, [make_item(content__msgSessionId="s@findermsg")])
    Session.objects.update(status=Session.Status.SNOOZED, snoozed_until=timezone.now())

    store(
        account,
        [make_item(content__msgSessionId="s@findermsg", content__msg__Content={"string": text})],
        key_buff="later",
    )

    session = Session.objects.get()
    assert session.last_message_preview == text
    assert (session.status, session.snoozed_until, session.unread_count) == ("open", None, 2)


def test_a_late_letter_older_than_the_latest_does_not_replace_the_preview(
    account, bare_upstream, make_item
):
    store(
        account,
        [make_item(content__msgSessionId="s@findermsg", content__msg__CreateTime=2_000_000_000)],
    )
    newest = Session.objects.get()
    old = make_item(
        content__msgSessionId="s@findermsg",
        content__msg__CreateTime=1_800_000_000,
        content__msg__Content={"string": "older"},
    )

    store(account, [old], key_buff="later")

    session = Session.objects.get()
    assert session.unread_count == 2
    assert session.last_message_at == newest.last_message_at
    assert session.last_message_preview == newest.last_message_preview != "older"


# --- re-delivery -----------------------------------------------------------------------------


@pytest.mark.parametrize("overlap", [1, 5, UPSTREAM_LETTERS])
def test_redelivered_page_changes_nothing(account, sandbox, overlap):
    sync_account(account)
    before = snapshot(account)
    key_buff = cursor(account)
    sandbox.inject("redeliver", overlap=overlap)

    result = sync_account(account)

    assert result.pages >= 1, "the sandbox re-delivered at least one page"
    assert (result.new_messages, result.new_sessions) == (0, 0)
    assert snapshot(account) == before
    assert cursor(account) == key_buff


def test_redelivery_in_the_middle_of_a_pass_stores_what_a_clean_run_stores(
    account, sandbox, clean_run
):
    client = OnPage(account, page=2, before=lambda: sandbox.inject("redeliver", overlap=4))

    result = sync_account(account, client=client)

    assert result.new_messages == UPSTREAM_LETTERS
    assert snapshot(account, times=False) == clean_run


def test_overlapping_pages_store_what_one_page_stores(db, account, bare_upstream, make_item):
    items = [make_item(content__isSender=n % 3 == 0) for n in range(12)]
    other = Account.objects.create(name="Reference", app_id="wx_reference", token="t")
    store(other, items)

    store(account, items[:8], key_buff="a")
    result = store(account, items[4:], key_buff="b")
    store(account, items[2:10], key_buff="c")

    assert result.new_messages == 4
    assert snapshot(account, times=False) == snapshot(other, times=False)


def test_a_letter_repeated_within_one_page_is_stored_once(account, bare_upstream, make_item):
    first, second = make_item(), make_item()

    result = store(account, [first, second, first])

    assert result.new_messages == 2
    assert Message.objects.count() == 2
    assert sum(Session.objects.values_list("unread_count", flat=True)) == 2


def test_a_redelivered_letter_with_other_text_changes_nothing(account, sandbox):
    sync_account(account)
    before = snapshot(account)
    known = upstream_log(sandbox)[1]["content"]["msg"]["NewMsgId"]
    sandbox.add_letter(SANDBOX_APP_ID, "edited later", peer=PEERS[0], new_msg_id=known)

    result = sync_account(account)

    assert (result.pages, result.new_messages) == (1, 0)
    assert snapshot(account) == before


# --- bad input -------------------------------------------------------------------------------


def test_a_page_with_bad_items_stores_the_good_ones_and_quarantines_the_rest(
    account, bare_upstream, make_item
):
    good = [make_item(), make_item()]
    bad = [
        make_item(drop=["content__msg__NewMsgId"]),
        make_item(content__msg__NewMsgId=-1),
        make_item(content__msg__NewMsgId=5.871873953492479e18),
        make_item(content__msg__NewMsgId=2**64),
        make_item(drop=["content__msgSessionId"]),
        make_item(content__msgSessionId="s" * 10_000),
        42,
    ]
    serve(bare_upstream, good[0], *bad, good[1])

    result = sync_account(account)

    assert (result.new_messages, result.quarantined, result.caught_up) == (2, 7, True)
    assert stored_ids(account) == sorted(item["content"]["msg"]["NewMsgId"] for item in good)
    errors = sorted(QuarantinedItem.objects.filter(account=account).values_list("error", flat=True))
    assert len(errors) == 7
    assert sum("NewMsgId" in error for error in errors) == 4
    assert sum("msgSessionId" in error for error in errors) == 2
    assert "item is int, not an object" in errors
    assert QuarantinedItem.objects.get(error__contains="-1 is not").raw == bad[1]
    assert cursor(account) != ""


def test_redelivered_quarantined_items_are_not_stored_twice(account, bare_upstream, make_item):
    serve(bare_upstream, make_item(), make_item(content__msg__NewMsgId=-1), "junk")
    sync_account(account)
    before = snapshot(account)
    bare_upstream.inject("redeliver", overlap=3)

    result = sync_account(account)

    assert (result.pages, result.quarantined) == (1, 0)
    assert snapshot(account) == before
    assert QuarantinedItem.objects.filter(account=account).count() == 2


def test_an_item_too_deep_to_parse_is_quarantined_and_the_page_still_commits(
    account, bare_upstream, make_item
):
    deep: Any = 0
    for _ in range(3000):
        deep = {"d": deep}
    good = make_item()

    result = store(account, [make_item(content__msg__Extra=deep), good])

    assert (result.new_messages, result.quarantined) == (1, 1)
    assert stored_ids(account) == [good["content"]["msg"]["NewMsgId"]]
    assert "RecursionError" in QuarantinedItem.objects.get().error
    assert cursor(account) == "next"


def test_hostile_image_xml_is_refused_fast_and_the_letter_still_stored(
    account, bare_upstream, make_item
):
    for xml in (BILLION_LAUGHS, EXTERNAL_ENTITY):
        serve(
            bare_upstream,
            make_item(content__msg__MsgType=3, content__msg__Content={"string": xml}),
        )
    started = time.perf_counter()

    result = sync_account(account)

    assert time.perf_counter() - started < 2
    assert result.new_messages == 2
    for message in Message.objects.filter(account=account):
        assert message.image is None
        assert "image XML: refused" in message.parse_error
        assert message.content in (BILLION_LAUGHS, EXTERNAL_ENTITY)
        assert "root:" not in str(message.raw)


def test_truncated_image_xml_is_stored_with_a_parse_error(
    account, bare_upstream, make_item, example_response
):
    xml = example_response["data"]["list"][4]["content"]["msg"]["Content"]["string"][:200]
    serve(bare_upstream, make_item(content__msg__MsgType=3, content__msg__Content={"string": xml}))

    sync_account(account)

    message = Message.objects.get(account=account)
    assert (message.msg_type, message.content, message.image) == (3, xml, None)
    assert "image XML: malformed" in message.parse_error


def test_five_megabytes_of_text_are_stored_intact(account, bare_upstream, make_item):
    text = ("私信" * 1024 + "\n") * 1280  # 2.6M characters, 7.9 MB of UTF-8
    serve(bare_upstream, make_item(content__msg__Content={"string": text}))

    sync_account(account)

    message = Message.objects.get(account=account)
    assert message.content == text
    assert message.raw["content"]["msg"]["Content"]["string"] == text
    assert len(Session.objects.get().last_message_preview) <= 120


def test_nul_bytes_and_lone_surrogates_are_cleaned_so_the_page_commits(
    account, bare_upstream, make_item
):
    # Both reach us as JSON escapes (\u0000, \ud800); PostgreSQL refuses them in text and jsonb.
    serve(
        bare_upstream,
        make_item(
            content__msg__Content={"string": "a\x00b\ud800c"},
            content__msg__FromUserName={"string": "v2_\x00peer@finder"},
            content__msgSessionId="s\x00\udfff@findermsg",
            content__msg__MsgSource="\udc00",
        ),
    )

    result = sync_account(account)

    assert result.new_messages == 1
    message = Message.objects.select_related("session").get(account=account)
    assert message.content == "a\ufffdb?c"
    assert message.from_username == "v2_\ufffdpeer@finder"
    assert message.session.msg_session_id == "s\ufffd?@findermsg"
    assert message.session.peer_username == "v2_\ufffdpeer@finder"
    assert message.msg_source == "?"
    assert message.raw["content"]["msg"]["Content"]["string"] == "a\ufffdb?c"


def test_wrong_types_are_stored_with_a_parse_error(account, bare_upstream, make_item):
    serve(
        bare_upstream,
        make_item(
            content__msg__MsgType="image",
            content__msg__Content=["文本"],
            content__isSender="yes",
            content__msg__CreateTime="yesterday",
            content__seq={"n": 1},
        ),
    )

    sync_account(account)

    message = Message.objects.get(account=account)
    assert (message.msg_type, message.content, message.is_sender, message.seq) == (
        0,
        "",
        False,
        None,
    )
    for name in ("MsgType", "Content", "isSender", "CreateTime", "seq"):
        assert name in message.parse_error
    assert abs(message.created_at - timezone.now()) < timedelta(minutes=1)


def test_over_long_user_names_are_cut_to_fit(account, bare_upstream, make_item):
    serve(
        bare_upstream,
        make_item(content__msg__FromUserName={"string": "v2_" + "p" * 5000 + "@finder"}),
    )

    sync_account(account)

    message = Message.objects.select_related("session").get(account=account)
    assert len(message.from_username) == 200
    assert message.session.peer_username == message.from_username
    assert "FromUserName cut to 200 characters" in message.parse_error


def test_unknown_message_types_are_stored_as_they_come(account, sandbox):
    sync_account(account)

    unknown = Message.objects.get(msg_type=9999)

    assert unknown.content == "<msg>a message type nobody documented</msg>"
    assert unknown.parse_error == ""


@pytest.mark.parametrize(
    ("reshape", "error"),
    [
        (lambda data: "oops", "PayloadError: sync data is str, not an object"),
        (lambda data: [data], "PayloadError: sync data is list, not an object"),
        (lambda data: {**data, "list": {"0": 1}}, "PayloadError: sync data.list is dict"),
        (
            lambda data: {**data, "keyBuff": None},
            "PayloadError: sync data has items but no keyBuff",
        ),
    ],
    ids=["string", "array", "list-object", "no-cursor"],
)
def test_a_page_that_is_not_a_page_fails_and_leaves_the_cursor(account, sandbox, reshape, error):
    with pytest.raises(SyncFailed, match=re.escape(error)):
        sync_account(account, client=OnPage(account, page=2, reshape=reshape))

    account.refresh_from_db()
    assert account.key_buff == EXAMPLE_KEY_BUFF
    assert Message.objects.filter(account=account).count() == 5
    assert account.last_error.startswith(error)
    assert account.failure_streak == 1


@pytest.mark.parametrize("new_msg_id", [2**63 - 1, 2**63, 2**63 + 1, 2**64 - 1], ids=str)
def test_ids_around_two_to_the_63_arrive_exactly_and_can_be_queried(
    account, bare_upstream, new_msg_id
):
    bare_upstream.add_letter(SANDBOX_APP_ID, "edge", new_msg_id=new_msg_id)
    bare_upstream.add_letter(SANDBOX_APP_ID, "below", new_msg_id=2**62)

    sync_account(account)

    assert Message.objects.get(new_msg_id=new_msg_id).content == "edge"
    assert list(Message.objects.order_by("-new_msg_id").values_list("content", flat=True)) == [
        "edge",
        "below",
    ]
    assert Message.objects.filter(new_msg_id__gte=new_msg_id).count() == 1


# --- failures mid-pass -----------------------------------------------------------------------

FAULTS = [
    pytest.param("http_500", {"times": 3}, 3, "UpstreamUnavailable: ", id="http_500"),
    pytest.param("ret_500", {}, 1, "UpstreamRejected: ret=500: 系统繁忙", id="ret_500"),
    pytest.param("invalid_json", {}, 1, "UpstreamBadResponse: ", id="invalid_json"),
    pytest.param("token_expired", {}, 1, "UpstreamRejected: ret=500: HTTP HEADER", id="token"),
    pytest.param("offline", {}, 1, "UpstreamRejected: ret=500: 发送消息失败", id="offline"),
]


@pytest.mark.parametrize(("kind", "options", "attempts", "error"), FAULTS)
def test_a_failure_on_the_second_page_keeps_the_first_and_the_next_pass_completes(
    account, sandbox, clean_run, caplog, kind, options, attempts, error
):
    caplog.set_level(logging.DEBUG)
    client = OnPage(account, page=2, before=lambda: sandbox.inject(kind, **options))

    with pytest.raises(SyncFailed) as failed:
        sync_account(account, client=client)

    account.refresh_from_db()
    assert account.key_buff == EXAMPLE_KEY_BUFF
    assert Message.objects.filter(account=account).count() == 5
    assert str(failed.value).startswith(error)
    assert account.last_error == str(failed.value)
    assert account.failure_streak == 1
    assert account.last_error_at is not None
    assert account.next_sync_at > timezone.now()
    assert account.sync_lease_token == ""
    page_two = [c for c in sandbox.calls_to(SYNC) if c["body"]["keyBuff"] == EXAMPLE_KEY_BUFF]
    assert len(page_two) == attempts
    assert any(record.name == "inbox.sync" for record in caplog.records), "the failure is logged"
    logged = [record.getMessage() for record in caplog.records]
    for text in (account.last_error, account.paused_reason, str(failed.value), *logged):
        assert SANDBOX_TOKEN not in text
    assert bool(account.paused_reason) == (kind == "token_expired")
    assert bool(account.outage_since) == (kind == "offline")  # an outage, probed, not a pause

    result = sync_account(account)

    account.refresh_from_db()
    assert result.new_messages == UPSTREAM_LETTERS - 5
    assert snapshot(account, times=False) == clean_run
    assert account.failure_streak == 0


def test_a_database_error_mid_page_rolls_the_whole_page_back(account, sandbox, clean_run):
    # A trigger refuses one letter of page 2 after its sessions were inserted.
    with connection.cursor() as cursor_:
        if connection.vendor == "postgresql":
            cursor_.execute(
                "CREATE FUNCTION refuse_letter() RETURNS trigger AS $$ BEGIN "
                "IF NEW.content LIKE '%保温杯%' THEN RAISE EXCEPTION 'refused'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            cursor_.execute(
                "CREATE TRIGGER refuse_letter BEFORE INSERT ON inbox_message "
                "FOR EACH ROW EXECUTE FUNCTION refuse_letter()"
            )
        else:
            cursor_.execute(
                "CREATE TRIGGER refuse_letter BEFORE INSERT ON inbox_message "
                "WHEN NEW.content LIKE '%保温杯%' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
    sessions_before = Session.objects.filter(account=account).count()

    with pytest.raises(SyncFailed, match="refused"):
        sync_account(account)

    assert cursor(account) == EXAMPLE_KEY_BUFF
    assert Message.objects.filter(account=account).count() == 5
    assert sessions_before == 0
    assert Session.objects.filter(account=account).count() == 2  # page 1's only

    with connection.cursor() as cursor_:
        cursor_.execute(
            "DROP TRIGGER refuse_letter ON inbox_message"
            if connection.vendor == "postgresql"
            else "DROP TRIGGER refuse_letter"
        )
    sync_account(account)

    assert snapshot(account, times=False) == clean_run


def test_consecutive_failures_back_off_further_and_a_success_resets(account, sandbox):
    sandbox.inject("ret_500", times=2)
    delays = []
    for streak in (1, 2):
        with pytest.raises(SyncFailed):
            sync_account(account)
        account.refresh_from_db()
        assert account.failure_streak == streak
        delays.append(account.next_sync_at - account.last_error_at)

    sync_account(account)

    account.refresh_from_db()
    # poll_interval * 2**streak, with up to 20% jitter either way.
    assert delays[1] > delays[0]
    assert account.failure_streak == 0
    assert account.last_success_at > account.last_error_at


# --- one pass at a time ----------------------------------------------------------------------


def test_a_pass_while_another_holds_the_lease_raises_sync_already_running(account, sandbox):
    with account_lease(account), pytest.raises(SyncAlreadyRunning):
        sync_account(account)

    account.refresh_from_db()
    assert sandbox.calls == []
    assert (account.failure_streak, account.last_error, account.sync_lease_token) == (0, "", "")


def test_a_lease_left_by_a_dead_worker_expires(account, sandbox):
    Account.objects.filter(pk=account.pk).update(
        sync_lease_token="dead-worker", sync_lease_until=timezone.now() - timedelta(seconds=1)
    )

    result = sync_account(account)

    assert result.new_messages == UPSTREAM_LETTERS


def test_two_store_page_calls_from_one_cursor_store_only_the_first(
    account, bare_upstream, make_item
):
    first = parse_sync_page({"list": [make_item(), make_item()], "keyBuff": "after-first"})
    second = parse_sync_page({"list": [make_item()], "keyBuff": "after-second"})

    with account_lease(account) as lease:
        store_page(account, first, lease_token=lease, expected="")
        with pytest.raises(CursorMoved):
            store_page(account, second, lease_token=lease, expected="")

    assert Message.objects.count() == 2
    assert cursor(account) == "after-first"


def test_store_page_without_the_lease_writes_nothing(account, bare_upstream, make_item):
    page = parse_sync_page({"list": [make_item()], "keyBuff": "next"})

    with account_lease(account), pytest.raises(CursorMoved):
        store_page(account, page, lease_token="not-the-holder", expected="")

    assert not Message.objects.exists()
    assert not Session.objects.exists()
    assert cursor(account) == ""


def test_a_pass_that_lost_its_lease_stops_without_moving_the_cursor(account, sandbox):
    def another_worker_takes_over() -> None:
        Account.objects.filter(pk=account.pk).update(sync_lease_token="another-worker")

    with pytest.raises(SyncFailed, match="CursorMoved"):
        sync_account(account, client=OnPage(account, page=2, before=another_worker_takes_over))

    account.refresh_from_db()
    assert account.key_buff == EXAMPLE_KEY_BUFF
    assert account.sync_lease_token == "another-worker", "the loser leaves the new lease alone"
    assert Message.objects.count() == 5


def _in_thread(target: Callable[[], Any], outcomes: list, barrier: threading.Barrier):
    def run() -> None:
        try:
            barrier.wait(timeout=10)
            outcomes.append(target())
        except Exception as exc:  # the outcome under test
            outcomes.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _wait_for_lock_waiters(cursor_, count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cursor_.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        if cursor_.fetchone()[0] >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{count} transactions never queued on the account's row lock")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_store_page_calls_from_one_cursor_commit_only_one(
    transactional_db, account, bare_upstream, make_item
):
    pages = [
        parse_sync_page({"list": [make_item(), make_item()], "keyBuff": "page-a"}),
        parse_sync_page({"list": [make_item(), make_item(), make_item()], "keyBuff": "page-b"}),
    ]
    lease = "the-pass"
    Account.objects.filter(pk=account.pk).update(
        sync_lease_token=lease, sync_lease_until=timezone.now() + timedelta(minutes=5)
    )
    outcomes: list = []
    barrier = threading.Barrier(3)
    # A third connection holds the account row, so both threads are inside store_page's
    # transaction, queued on the same lock, before either can commit.
    with psycopg.connect(**connection.get_connection_params()) as holder:
        holder.execute("SELECT 1 FROM accounts_account WHERE id = %s FOR UPDATE", [account.pk])
        threads = [
            _in_thread(
                lambda page=page: store_page(account, page, lease_token=lease, expected=""),
                outcomes,
                barrier,
            )
            for page in pages
        ]
        barrier.wait(timeout=10)
        with psycopg.connect(**connection.get_connection_params(), autocommit=True) as watcher:
            _wait_for_lock_waiters(watcher.cursor(), 2)
        holder.commit()
    for thread in threads:
        thread.join(timeout=10)

    winners = [outcome for outcome in outcomes if isinstance(outcome, PageResult)]
    losers = [outcome for outcome in outcomes if isinstance(outcome, CursorMoved)]
    assert (len(winners), len(losers)) == (1, 1), outcomes
    won = pages[0] if cursor(account) == "page-a" else pages[1]
    assert winners[0].new_messages == len(won.letters)
    assert Message.objects.count() == len(won.letters)
    assert Session.objects.count() == len({letter.msg_session_id for letter in won.letters})


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_passes_racing_on_one_account_store_every_letter_once(
    transactional_db, account, sandbox
):
    # The first pass's first fetch is slow, so the second starts while the first holds the lease.
    sandbox.inject("slow", seconds=0.5)
    outcomes: list = []
    barrier = threading.Barrier(2)
    threads = [_in_thread(lambda: sync_account(account), outcomes, barrier) for _ in range(2)]
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(type(outcome).__name__ for outcome in outcomes) == [
        "PassResult",
        "SyncAlreadyRunning",
    ]
    assert stored_ids(account) == upstream_ids(sandbox)
    assert Session.objects.count() == UPSTREAM_SESSIONS
    assert len(sandbox.calls_to(SYNC)) == 4


# --- queries per page ------------------------------------------------------------------------


def _page_of(make_item, size: int, *, images: bool = True) -> list[dict]:
    """`size` new letters, each in its own new session, a few of them images."""
    xml = (
        '<msg><img cdnthumburl="30570201" cdnthumbwidth="120" cdnthumbheight="90" '
        'cdnthumblength="1315" md5="704de7ebbc107a51a4f0986253a6d3b6" /></msg>'
    )
    return [
        make_item(
            content__msgSessionId=f"session-{size}-{n}@findermsg",
            content__isSender=n % 4 == 0,
            **(
                {"content__msg__MsgType": 3, "content__msg__Content": {"string": xml}}
                if images and n % 5 == 0
                else {}
            ),
        )
        for n in range(size)
    ]


def _queries_to_store(account: Account, items: list[dict], key_buff: str) -> int:
    page = parse_sync_page({"list": items, "keyBuff": key_buff})
    with account_lease(account) as lease:
        expected = cursor(account)
        with CaptureQueriesContext(connection) as queries:
            store_page(account, page, lease_token=lease, expected=expected)
    return len(queries)


def test_storing_a_page_takes_as_many_queries_for_100_letters_as_for_10(
    account, bare_upstream, make_item
):
    small = _queries_to_store(account, _page_of(make_item, 10), "after-10")
    large = _queries_to_store(account, _page_of(make_item, 100), "after-100")

    assert Message.objects.count() == 110
    assert Session.objects.count() == 110
    # Each page: lock the account, lock the page's sessions, insert the new ones, look up known
    # letters, look up replies awaiting their echo, insert letters, update sessions, move the
    # cursor (plus the savepoint around it, as tests run inside a transaction); and the report
    # facts (inbox/reports/facts.py): read the sessions' timeline states, insert new episodes,
    # update changed ones, insert replies (with their message ids), upsert the states, add to
    # the letters per hour.
    assert large == small
    assert small <= 17


def test_a_page_of_1000_letters_takes_a_bounded_number_of_queries(
    account, bare_upstream, make_item
):
    small = _queries_to_store(account, _page_of(make_item, 10), "after-10")
    huge = _queries_to_store(account, _page_of(make_item, 1000), "after-1000")

    assert Message.objects.count() == 1010
    if connection.vendor == "postgresql":
        assert huge == small
    else:
        # SQLite caps bound parameters per statement (stock Django assumes 999, split every
        # ~25 letters; inbox.sqlite_backend reads the real limit, 32766 since SQLite 3.32), so a
        # 1,000-letter page's INSERTs and CASE-WHEN session UPDATE are split into a few batches.
        # The count still grows with the page only by the batch count, never per letter.
        assert huge <= small + 8


def test_a_redelivered_page_takes_no_more_queries_than_a_new_one(account, bare_upstream, make_item):
    items = _page_of(make_item, 50)
    new = _queries_to_store(account, items, "first")
    before = snapshot(account)

    again = _queries_to_store(account, items, "second")

    assert again <= new
    assert snapshot(account)["messages"] == before["messages"]


def test_sessions_new_on_a_page_are_inserted_complete_and_never_updated(
    account, bare_upstream, make_item
):
    # Every session row written costs an entry in every session index (dozens in each trigram
    # GIN): a new session goes in once, with its letters already counted.
    items = [
        make_item(
            content__msgSessionId="fresh-a@findermsg", content__msg__Content={"string": "在吗"}
        ),
        make_item(content__msgSessionId="fresh-a@findermsg", content__isSender=1),
        make_item(
            content__msgSessionId="fresh-a@findermsg", content__msg__Content={"string": "好的"}
        ),
        make_item(
            content__msgSessionId="fresh-b@findermsg", content__msg__Content={"string": "你好"}
        ),
    ]
    page = parse_sync_page({"list": items, "keyBuff": "after-fresh"})
    with account_lease(account) as lease, CaptureQueriesContext(connection) as queries:
        result = store_page(account, page, lease_token=lease, expected=cursor(account))

    assert result.new_sessions == 2
    # ("N times: UPDATE …" is how an executemany is logged, on SQLite.)
    assert not [q["sql"] for q in queries if 'UPDATE "inbox_session"' in q["sql"]]
    fresh_a = Session.objects.get(account=account, msg_session_id="fresh-a@findermsg")
    fresh_b = Session.objects.get(account=account, msg_session_id="fresh-b@findermsg")
    # The reply answered 在吗; only 好的, written after it, is unread.
    assert (fresh_a.unread_count, fresh_a.last_message_preview) == (1, "好的")
    assert (fresh_b.unread_count, fresh_b.last_message_preview) == (1, "你好")
    assert (
        fresh_a.last_message_at
        == Message.objects.filter(session=fresh_a).latest("created_at").created_at
    )


def test_a_whole_pass_takes_a_bounded_number_of_queries_per_page(
    account, sandbox, django_assert_max_num_queries
):
    # Lease, cursor read, 3 pages of at most 19 queries (10 + the report facts' 7 + linking
    # new sessions to their viewers' 2), pairing the pass's answers for suggested replies once
    # (6: inbox.suggestions.pairing.pair_new_answers), health update, lease release.
    with django_assert_max_num_queries(4 + 3 * 19 + 6):
        result = sync_account(account)

    assert result.pages == 3


# --- the thread page shows what was synced ---------------------------------------------------


def _dimension_mentions(html: str, value: int) -> int:
    return len(re.findall(rf"(?<![\w.#-]){value}(?![\w.-])", html))


def test_the_thread_page_requires_login(client, synced):
    url = Session.objects.get(msg_session_id=EXAMPLE_SESSION).get_absolute_url()

    response = client.get(url)

    assert response.status_code == 302
    assert "login" in response["Location"]


def test_the_thread_page_is_not_shown_to_someone_elses_user(client, synced, django_user_model):
    client.force_login(django_user_model.objects.create_user("stranger", password="x"))
    url = Session.objects.get(msg_session_id=EXAMPLE_SESSION).get_absolute_url()

    assert client.get(url).status_code == 404


def test_the_thread_page_renders_message_text_escaped(admin_client, synced):
    session = Session.objects.get(messages__content__contains=SCRIPT_TAG)

    response = admin_client.get(session.get_absolute_url())

    html = response.content.decode()
    assert response.status_code == 200
    assert "&lt;script&gt;" in html
    assert SCRIPT_TAG not in html
    assert "这条消息会被正常显示吗？" in html


def test_the_thread_page_shows_an_images_thumbnail_dimensions(admin_client, synced):
    session = Session.objects.get(msg_session_id=EXAMPLE_SESSION)

    response = admin_client.get(session.get_absolute_url())

    html = response.content.decode()
    assert response.status_code == 200
    assert "文本" in html
    assert _dimension_mentions(html, 120) >= 2


def test_the_thread_page_of_an_account_member_is_shown(client, synced, django_user_model):
    member = django_user_model.objects.create_user("agent", password="x")
    synced.members.add(member)
    client.force_login(member)

    response = client.get(Session.objects.get(msg_session_id=EXAMPLE_SESSION).get_absolute_url())

    assert response.status_code == 200
