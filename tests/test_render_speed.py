"""Thread rendering stays cheap: a page of mixed messages renders without a single query once
its rows are loaded, and `benchmark_render` measures it without leaving anything behind.
(No timing is asserted here: the figures come from the command, see README.)"""

from __future__ import annotations

import re
import uuid
from io import StringIO

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from accounts.models import Account
from accounts.sandbox import PEERS
from accounts.sandbox_media import png_bytes
from inbox import browse, rendering, services
from inbox.models import Message, Session


def test_benchmark_render_prints_ms_per_message_and_leaves_nothing_behind(db):
    counts = (Account.objects.count(), Session.objects.count(), Message.objects.count())
    users = get_user_model().objects.count()
    out = StringIO()
    call_command("benchmark_render", repeats=3, stdout=out)
    text = out.getvalue()
    assert "thread of 50 messages" in text
    assert re.search(r"message list render: [0-9.]+ ms/message p50", text)
    assert re.search(r"open the thread \(htmx request, queries included\): [0-9.]+ ms p50", text)
    assert (Account.objects.count(), Session.objects.count(), Message.objects.count()) == counts
    assert get_user_model().objects.count() == users


def test_a_page_of_every_kind_of_message_renders_without_queries(
    synced, sandbox, member, settings, tmp_path, django_assert_num_queries
):
    settings.MEDIA_ROOT = tmp_path
    settings.PUBLIC_BASE_URL = "https://inbox.example"
    session = Session.objects.get(peer_username=PEERS[1].username)
    services.compose_reply(session, member, "好的 https://example.com/a", uuid.uuid4())
    upload = SimpleUploadedFile("a.png", png_bytes(8, 8, "x"), content_type="image/png")
    services.compose_image_reply(session, member, upload, uuid.uuid4())
    services.add_note(session, member, "内部备注", uuid.uuid4())
    services.assign(session, member, member)
    services.set_status(session, Session.Status.RESOLVED, member)
    Message.objects.filter(session__account=synced).exclude(session=session).update(session=session)
    messages = browse.latest_page(session).messages
    kinds = {(m.kind, m.msg_type, bool(m.attachment)) for m in messages}
    assert len(kinds) >= 11
    with django_assert_num_queries(0):
        html = rendering.render_messages(messages, rendering.Reader.of(member, "token"))
    assert html.count('id="message-') == len(messages)
    assert 'class="reply-image"' in html and 'class="activity-line"' in html
