"""How long the inbox takes to render a thread, per message, on the configured database.

A throwaway account gets one conversation of mixed letters built through the real code paths
(sync pages through `store_page`, replies, notes, status and assignment changes through the
services), inside a transaction that is rolled back at the end: nothing is left behind and no
task is queued. Then the thread's message list is rendered many times from rows already loaded
(template work only), and the thread is opened through the real view as an htmx request
(queries included). `benchmark_render` prints the figures; `benchmark_inbox` can call
`measure_render` for its own table.
"""

from __future__ import annotations

import hashlib
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from django.utils import timezone, translation

from accounts.models import Account
from accounts.sandbox import APP_XML, IMAGE_XML, letter_item, session_id_for
from inbox import browse, services
from inbox.models import Message, Session
from inbox.payloads import parse_sync_page
from inbox.sync import account_lease, store_page

SHOP = "v2_060000231003b20faec8c7e28811c4d5cc0ded37b0779c48c759a7446a87688c2774e5300c32@finder"
PEER = "v2_060000231003b20faec8c7e28811c4d5cc0ded37b0779c48c759a7446a8768benchpeer@finder"

TEXTS = [
    "你好，请问这款保温杯还有货吗？",
    "老板，我昨天买的衣服尺码不对，可以换吗？\n订单号 20240124-8831",
    "直播间说的优惠券在哪里领？",
    "物流好像一直没有更新……麻烦帮忙查一下，谢谢！",
    "收到货了，质量很好 👍",
    "Hi, do you ship to Singapore?",
]
LINK_TEXTS = [
    "可以的，请在订单页申请换货。详情见 https://example.com/help/exchange",
    "Tracking: https://www.sf-express.com/track?no=SF1234567890&lang=zh (updated daily).",
    "看这里 https://channels.weixin.qq.com/live/123，直播八点开始",
]


@dataclass(frozen=True)
class RenderFigures:
    """Milliseconds per message for rendering the message list (template work only: wall-clock
    p50 and p95 over the repeats, and CPU time p50, which other processes on a shared machine
    disturb less), and milliseconds for opening the thread as an htmx request (whole request)."""

    messages: int
    repeats: int
    list_ms_per_message_p50: float
    list_ms_per_message_p95: float
    list_cpu_ms_per_message_p50: float
    thread_request_ms_p50: float
    thread_request_ms_p95: float


def measure_render(*, repeats: int = 200, language: str = "zh-hans") -> RenderFigures:
    """Build the thread, time it, roll everything back."""
    with translation.override(language), transaction.atomic():
        user, session = _build_thread()
        messages = browse.latest_page(session).messages
        request = RequestFactory().get(session.get_absolute_url())
        request.user = user
        context = {"messages": messages, "session": session}
        render_to_string("inbox/inbox.html#message-list", context, request=request)  # warm up
        list_times, cpu_times = [], []
        for _ in range(repeats):
            started, cpu_started = time.perf_counter(), time.thread_time()
            render_to_string("inbox/inbox.html#message-list", context, request=request)
            list_times.append((time.perf_counter() - started) * 1000 / len(messages))
            cpu_times.append((time.thread_time() - cpu_started) * 1000 / len(messages))

        client = Client(HTTP_HX_REQUEST="true", SERVER_NAME=_allowed_host())
        client.force_login(user)
        url = session.get_absolute_url()
        client.get(url)
        request_times = []
        for _ in range(max(1, repeats // 4)):
            started = time.perf_counter()
            response = client.get(url)
            request_times.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"opening the thread answered {response.status_code}")
        transaction.set_rollback(True)
    return RenderFigures(
        messages=len(messages),
        repeats=repeats,
        list_ms_per_message_p50=statistics.median(list_times),
        list_ms_per_message_p95=_p95(list_times),
        list_cpu_ms_per_message_p50=statistics.median(cpu_times),
        thread_request_ms_p50=statistics.median(request_times),
        thread_request_ms_p95=_p95(request_times),
    )


def _allowed_host() -> str:
    host = next((h for h in settings.ALLOWED_HOSTS if h != "*" and not h.startswith(".")), "")
    return host or "localhost"


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def _build_thread() -> tuple[object, Session]:
    """One superuser and one conversation of 50 messages: Chinese text, text with links,
    images with CDN metadata, app messages, a system notice, a recall, an unknown type, a letter
    that could not be fully read, notes, activity lines, and sent, sending and failed replies.
    The earlier half is from two days ago, the rest from the last hour (relative times)."""
    tag = uuid.uuid4().hex[:12]
    account = Account.objects.create(
        name=f"benchmark-render-{tag} (temporary)", app_id=f"benchmark-render-{tag}", token="x"
    )
    user = get_user_model().objects.create_superuser(f"benchmark-render-{tag}", password=None)
    account.members.add(user)
    now = timezone.now()
    items = [
        _letter(
            account,
            seq,
            now - timedelta(days=2, minutes=60 - seq)
            if seq < 20
            else now - timedelta(minutes=60 - seq),
            msg_type,
            content,
            is_sender,
        )
        for seq, (msg_type, content, is_sender) in enumerate(_letter_specs(), start=1)
    ]
    with account_lease(account) as lease:
        store_page(
            account,
            parse_sync_page({"list": items, "keyBuff": "bench"}),
            lease_token=lease,
            expected="",
        )
    session = Session.objects.get(account=account)
    for number in range(3):
        services.add_note(
            session,
            user,
            f"内部备注 {number}: 客户要求 https://example.com/o/{number}",
            uuid.uuid4(),
        )
    services.assign(session, user, user)
    services.set_status(session, Session.Status.PENDING, user)
    services.set_status(session, Session.Status.OPEN, user)
    replies = [
        services.compose_reply(session, user, text, uuid.uuid4())
        for text in ("好的，马上为您处理", "已发货，单号 SF1234567890", "请稍等", "稍后回复您")
    ]
    Message.objects.filter(pk__in=[replies[0].pk, replies[1].pk]).update(
        delivery=Message.Delivery.SENT
    )
    Message.objects.filter(pk=replies[2].pk).update(
        delivery=Message.Delivery.FAILED,
        delivery_error="The upstream did not answer.",
        maybe_delivered=True,
    )
    return user, Session.objects.select_related("account", "assignee").get(pk=session.pk)


def _letter_specs() -> list[tuple[int, str, bool]]:
    specs: list[tuple[int, str, bool]] = []
    for number in range(40):
        slot = number % 10
        if slot in (0, 2, 5, 8):
            specs.append((1, TEXTS[number % len(TEXTS)], number % 3 == 0))
        elif slot in (1, 6):
            specs.append((1, LINK_TEXTS[number % len(LINK_TEXTS)], False))
        elif slot in (3, 7):
            specs.append((3, _image_xml(number), False))
        elif slot == 4:
            title = "春季新品 Spring collection" if number % 20 else "618 活动说明"
            specs.append(
                (
                    49,
                    APP_XML.format(
                        title=title,
                        des="",
                        type=51 if number % 20 else 5,
                        url="https://channels.weixin.qq.com/",
                    ),
                    False,
                )
            )
        else:
            specs.append((1, TEXTS[number % len(TEXTS)], True))
    specs[9] = (10000, "你已添加了小鹿同学，现在可以开始聊天了。", False)
    specs[19] = (
        10002,
        '<sysmsg type="revokemsg"><revokemsg><replacemsg><![CDATA["小鹿同学" '
        "撤回了一条消息]]></replacemsg></revokemsg></sysmsg>",
        False,
    )
    specs[29] = (9999, "<msg>a message type nobody documented</msg>", False)
    specs[39] = (3, "<msg><img broken", False)  # kept with a parse error
    return specs


def _image_xml(number: int) -> str:
    md5 = hashlib.md5(str(number).encode()).hexdigest()
    return IMAGE_XML.format(
        key=md5,
        url=f"3057020100044b3049{md5}",
        width=120,
        height=(90, 120, 160)[number % 3],
        thumb_length=1315,
        length=22001,
        hd_length=1096,
        md5=md5,
    )


def _letter(account: Account, seq: int, at, msg_type: int, content: str, is_sender: bool) -> dict:
    return letter_item(
        seq=seq,
        new_msg_id=int(hashlib.sha256(f"{account.app_id}{seq}".encode()).hexdigest()[:15], 16),
        me=SHOP,
        peer=PEER,
        is_sender=is_sender,
        msg_type=msg_type,
        content=content,
        create_time=int(at.timestamp()),
        msg_session_id=session_id_for(account.app_id, PEER),
    )
