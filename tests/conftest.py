from __future__ import annotations

import itertools
import json
import os
import time
import uuid

import pytest
from django.contrib.auth import get_user_model

from accounts.models import Account
from accounts.sandbox import EXAMPLE_PATH, SandboxServer, letter_item, start_sandbox
from accounts.sandbox_media import finder_name
from inbox.models import Session
from inbox.payloads import parse_sync_page
from inbox.sync import account_lease, store_page, sync_account

SANDBOX_APP_ID = "wx_test_app"
SANDBOX_TOKEN = "test-token-5f1c2b9e7d"


def store_items(account: Account, items: list[dict], key_buff: str) -> None:
    """One sync page of raw upstream `items` stored the way a pass stores it (lease held,
    cursor checked), without an upstream."""
    account.refresh_from_db(fields=["key_buff"])
    page = parse_sync_page({"list": items, "keyBuff": key_buff})
    with account_lease(account) as lease:
        store_page(account, page, lease_token=lease, expected=account.key_buff)


_conversation_ids = itertools.count(10**15)


def store_conversation(
    account: Account, session_id: str, letters: list[tuple[bool, str]], *, start: int | None = None
) -> Session:
    """Text letters of one conversation, (sent by the account?, text), a minute apart from
    `start` (an hour ago by default), stored as a sync page stores them."""
    start = start or int(time.time()) - 3600
    me, peer = finder_name(account.app_id), finder_name(session_id)
    items = []
    for offset, (is_sender, content) in enumerate(letters):
        number = next(_conversation_ids)
        items.append(
            letter_item(
                seq=number % 10**9,
                new_msg_id=number,
                me=me,
                peer=peer,
                is_sender=is_sender,
                msg_type=1,
                content=content,
                create_time=start + 60 * offset,
                msg_session_id=session_id,
            )
        )
    store_items(account, items, f"page-{uuid.uuid4().hex}")
    return Session.objects.get(account=account, msg_session_id=session_id)


@pytest.fixture(scope="session")
def sandbox_server() -> SandboxServer:
    server = start_sandbox()
    yield server
    server.shutdown()


@pytest.fixture
def sandbox(sandbox_server: SandboxServer):
    """The sandbox's state, reset, with one account that serves the example page first."""
    state = sandbox_server.state
    state.reset()
    state.add_account(SANDBOX_APP_ID, SANDBOX_TOKEN)
    yield state
    state.reset()


@pytest.fixture
def account(db, sandbox_server: SandboxServer, sandbox) -> Account:
    return Account.objects.create(
        name="Test shop",
        app_id=SANDBOX_APP_ID,
        token=SANDBOX_TOKEN,
        base_url=sandbox_server.base_url,
    )


@pytest.fixture
def synced(account: Account) -> Account:
    """The account with the sandbox's example page and scripted conversation synced."""
    sync_account(account)
    account.refresh_from_db()
    return account


@pytest.fixture
def member(synced: Account):
    """李四, a member of the synced account."""
    user = get_user_model().objects.create_user("li.si", password="pw", first_name="李四")
    synced.members.add(user)
    return user


@pytest.fixture
def outsider(db):
    """Signed in, a member of another account only."""
    user = get_user_model().objects.create_user("outsider", password="pw")
    other = Account.objects.create(name="Other shop", app_id="wx_other", token="other-token")
    other.members.add(user)
    return user


@pytest.fixture
def member_client(client, member):
    client.force_login(member)
    return client


@pytest.fixture(scope="session")
def example_response() -> dict:
    """The service's own example response for syncPrivateLetterMsg, verbatim."""
    return json.loads(EXAMPLE_PATH.read_bytes())


@pytest.fixture(autouse=True)
def _skip_postgres_tests_elsewhere(request) -> None:
    """`@pytest.mark.postgres` tests need real concurrent transactions or PostgreSQL's own
    behaviour; SQLite cannot stand in for them."""
    if request.node.get_closest_marker("postgres") is None:
        return
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip(
            f"needs PostgreSQL (the database is {connection.vendor}); "
            "run with DATABASE_URL=postgres://..."
        )


@pytest.fixture
def make_item():
    """Build one syncPrivateLetterMsg list item shaped like the service's example; keyword
    arguments override fields (`content__msg__NewMsgId=...` sets content.msg.NewMsgId), and
    `drop=["content__msgSessionId"]` removes fields. A letter with `content__isSender` set goes
    from the shop to the peer."""
    counter = iter(range(1, 10**9))

    def build(*, drop: tuple[str, ...] | list[str] = (), **overrides) -> dict:
        n = next(counter)
        item = {
            "syncKeyType": 5,
            "itemType": 1,
            "content": {
                "msg": {
                    "MsgId": n,
                    "FromUserName": {"string": f"v2_peer{n % 7}@finder"},
                    "ToUserName": {"string": "v2_shop@finder"},
                    "MsgType": 1,
                    "Content": {"string": f"文本 {n}"},
                    "Status": 3,
                    "ImgStatus": 1,
                    "ImgBuf": {"iLen": 0},
                    "CreateTime": 1706084840 + n,
                    "MsgSource": "",
                    "NewMsgId": 243683914400108300 + n,
                    "MsgSeq": n,
                },
                "msgSessionId": f"session-{n % 7}@findermsg",
                "seq": n,
                "extinfo": "CAIQAw==",
                "isSender": 0,
            },
            "subType": 2,
        }
        if overrides.get("content__isSender"):
            msg = item["content"]["msg"]
            msg["FromUserName"], msg["ToUserName"] = msg["ToUserName"], msg["FromUserName"]
        for key, value in [*overrides.items(), *((key, _DROP) for key in drop)]:
            *parents, leaf = key.split("__")
            target = item
            for parent in parents:
                target = target[parent]
            if value is _DROP:
                del target[leaf]
            else:
                target[leaf] = value
        return item

    return build


_DROP = object()


SERVICE_MARKERS = ("postgres", "redis", "browser")


def pytest_collection_modifyitems(config, items):
    """Browser tests run last. Playwright's sync API keeps an asyncio loop running in the main
    thread while its (session-scoped) browser lives, and asgiref's async_to_sync, which the live
    stream tests call, refuses to run under a running loop."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With FINDER_REQUIRE_SERVICES=1 (set by .ci/run), a test that needs PostgreSQL, Redis or
    Chromium fails instead of skipping when its service is missing: CI must not pass by
    skipping what it is there to check."""
    outcome = yield
    report = outcome.get_result()
    if (
        report.skipped
        and os.environ.get("FINDER_REQUIRE_SERVICES")
        and any(item.get_closest_marker(name) for name in SERVICE_MARKERS)
    ):
        report.outcome = "failed"
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"FINDER_REQUIRE_SERVICES is set but the test was skipped: {reason}"


@pytest.fixture(autouse=True)
def _skip_redis_tests_elsewhere(request) -> None:
    """`@pytest.mark.redis` tests run a worker against the Redis in CELERY_BROKER_URL."""
    if request.node.get_closest_marker("redis") is None:
        return
    if not os.environ.get("CELERY_BROKER_URL", "").startswith(("redis://", "rediss://")):
        pytest.skip("needs Redis; run with CELERY_BROKER_URL=redis://...")


@pytest.fixture(autouse=True)
def _pictures_kept_apart(settings, tmp_path_factory) -> None:
    """What the code under test stores as files (downloaded pictures, image replies) goes to
    this test run's temporary folder, never to the checkout's var/media; and each test starts
    with an empty thumbnail schedule (inbox.pictures.ratelimit), in Redis too."""
    settings.MEDIA_ROOT = tmp_path_factory.getbasetemp() / "media"
    settings.PICTURES_KEY_PREFIX = f"test:{uuid.uuid4().hex}:pictures:"


@pytest.fixture(autouse=True)
def _presence_kept_apart(settings) -> None:
    """Each test starts with nobody online, busy or viewing (inbox.live): its presence keys get
    a prefix of their own, so neither an earlier test nor an earlier run on the same Redis (user
    ids repeat across runs) leaves an agent "busy" in it. tests/live sets its own on top."""
    settings.LIVE_KEY_PREFIX = f"test:{uuid.uuid4().hex}:live:"
