"""Pictures without a click, kept for good: opening a thread queues its image letters'
thumbnails (once, at the account's rate), the poll redraws each card when its picture is stored,
every picture is kept content-addressed and size-capped on our side, served only to members,
and the retention sweep deletes what nobody looked at (the letter then says so)."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account
from accounts.sandbox import IMAGE_XML, Peer
from accounts.sandbox_media import png_bytes
from inbox import images
from inbox.celery import app
from inbox.models import Message, Session
from inbox.pictures import ratelimit, services, storage, tasks
from inbox.pictures.models import MessagePicture, StoredPicture
from inbox.sync import sync_account
from tests.conftest import SANDBOX_APP_ID

DOWNLOAD = "/message/downloadImage"
GALLERY = Peer("v2_gallery_peer@finder", "看图的人")


def image_xml(name: str, width: int = 120, height: int = 90) -> str:
    return IMAGE_XML.format(
        key=name.ljust(32, "0"),
        url=f"3057{name}",
        width=width,
        height=height,
        thumb_length=width * height // 12,
        length=width * height * 2,
        hd_length=width * height * 5,
        md5=name.ljust(32, "0"),
    )


def add_images(sandbox, account: Account, names: list[str], texts: int = 0) -> Session:
    """Image letters (one per name; the same name is the same picture) from GALLERY, after
    `texts` text letters, synced."""
    for number in range(texts):
        sandbox.add_letter(SANDBOX_APP_ID, f"看看这个 {number}", peer=GALLERY)
    for name in names:
        sandbox.add_letter(SANDBOX_APP_ID, image_xml(name), peer=GALLERY, msg_type=3)
    sync_account(account)
    return Session.objects.get(account=account, peer_username=GALLERY.username)


def image_letters(session: Session) -> list[Message]:
    return list(session.messages.filter(msg_type=Message.Type.IMAGE).order_by("pk"))


@pytest.fixture
def queued(monkeypatch) -> list[tuple[int, float]]:
    """Thumbnail downloads queued (message id, countdown), instead of run."""
    calls: list[tuple[int, float]] = []

    def record(args, countdown=None, **options):
        calls.append((args[0], countdown))

    monkeypatch.setattr(tasks.fetch_thumbnail, "apply_async", record)
    return calls


def open_thread(client, session: Session, captured, *, execute: bool = True):
    with captured(execute=execute):
        return client.get(session.get_absolute_url(), HTTP_HX_REQUEST="true")


def poll(client, session: Session, since, captured):
    with captured(execute=True):
        return client.get(
            reverse("inbox:thread_poll", args=[session.pk]),
            {"since": since, "tail": "1"},
            HTTP_HX_REQUEST="true",
        )


def picture_files(settings) -> list:
    root = settings.MEDIA_ROOT / "pictures"
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


@pytest.fixture(autouse=True)
def _empty_media(settings, tmp_path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


# --- opening a thread queues its thumbnails, once --------------------------------------------


def test_opening_a_thread_queues_the_thumbnails_of_its_image_letters_once(
    member_client, synced, sandbox, queued, django_capture_on_commit_callbacks
):
    session = add_images(sandbox, synced, ["a1", "a2", "a3"], texts=2)
    letters = image_letters(session)

    first = open_thread(member_client, session, django_capture_on_commit_callbacks)

    # Newest first: the bottom of the thread is what the reader sees first.
    assert [message_id for message_id, _ in queued] == [m.pk for m in reversed(letters)]
    html = first.content.decode()
    assert html.count('class="image-placeholder is-loading"') == 3
    assert "Loading the preview" in html

    since = first.context["thread_since"]
    open_thread(member_client, session, django_capture_on_commit_callbacks)
    for _ in range(3):
        poll(member_client, session, since, django_capture_on_commit_callbacks)
    assert len(queued) == 3
    assert MessagePicture.objects.filter(kind="thumb").count() == 3


def test_the_thread_poll_queues_only_letters_new_to_the_page(
    member_client, synced, sandbox, queued, django_capture_on_commit_callbacks
):
    session = add_images(sandbox, synced, ["b1"])
    since = open_thread(member_client, session, django_capture_on_commit_callbacks).context[
        "thread_since"
    ]
    # The first thumbnail failed: only a later open asks again, never the poll.
    services.thumbnail_failed(image_letters(session)[0].pk, "the device is busy")
    session = add_images(sandbox, synced, ["b2"])
    new = image_letters(session)[-1]

    answer = poll(member_client, session, since, django_capture_on_commit_callbacks)
    poll(member_client, session, since, django_capture_on_commit_callbacks)

    assert answer.status_code == 200
    assert [message_id for message_id, _ in queued] == [image_letters(session)[0].pk, new.pk]
    assert "No preview: the device is busy" in answer.content.decode()


def test_a_failed_thumbnail_is_asked_for_again_by_an_open_after_the_wait(
    member_client, synced, sandbox, queued, settings, django_capture_on_commit_callbacks
):
    session = add_images(sandbox, synced, ["c1"])
    letter = image_letters(session)[0]
    services.thumbnail_failed(letter.pk, "the device is busy")
    open_thread(member_client, session, django_capture_on_commit_callbacks)
    assert queued == []

    MessagePicture.objects.filter(message=letter).update(
        next_try_at=timezone.now() - timedelta(seconds=1)
    )
    open_thread(member_client, session, django_capture_on_commit_callbacks)

    assert [message_id for message_id, _ in queued] == [letter.pk]
    assert MessagePicture.objects.get(message=letter).error == ""


def test_a_thread_of_an_offline_or_paused_account_queues_nothing(
    member_client, synced, sandbox, queued, django_capture_on_commit_callbacks
):
    session = add_images(sandbox, synced, ["d1"])
    Account.objects.filter(pk=synced.pk).update(outage_since=timezone.now())
    open_thread(member_client, session, django_capture_on_commit_callbacks)
    Account.objects.filter(pk=synced.pk).update(outage_since=None, paused_reason="token expired")
    open_thread(member_client, session, django_capture_on_commit_callbacks)

    assert queued == []
    assert not MessagePicture.objects.exists()


def test_pictures_cost_the_thread_one_query_and_the_first_open_one_more(
    member_client, synced, sandbox, queued, monkeypatch, django_capture_on_commit_callbacks
):
    """The stored pictures of the page's image letters are read in one query, whatever their
    number; the claim of the missing thumbnails is one statement, only when some are missing."""
    session = add_images(sandbox, synced, [f"e{n}" for n in range(8)], texts=3)
    url = session.get_absolute_url()

    def count(call) -> int:
        with CaptureQueriesContext(connection) as captured:
            call()
        return len(captured)

    real = services.show_pictures
    monkeypatch.setattr("inbox.views.show_pictures", lambda *args, **kwargs: None)
    member_client.get(url, HTTP_HX_REQUEST="true")  # marks the thread read (a query of its own)
    without = count(lambda: member_client.get(url, HTTP_HX_REQUEST="true"))
    monkeypatch.setattr("inbox.views.show_pictures", real)
    first = count(lambda: open_thread(member_client, session, django_capture_on_commit_callbacks))
    again = count(lambda: open_thread(member_client, session, django_capture_on_commit_callbacks))

    assert (first, again) == (without + 2, without + 1)
    assert len(queued) == 8


# --- at a few a second per account ------------------------------------------------------------


def test_the_limiter_spaces_one_accounts_downloads_and_not_anothers(settings):
    settings.PICTURES_PER_SECOND_PER_ACCOUNT = 2
    settings.PICTURES_QUEUE_AHEAD_SECONDS = 60

    assert ratelimit.reserve(1, 3) == pytest.approx([0, 0.5, 1.0], abs=0.02)
    # A second thread of the same account goes after the first one's downloads.
    assert ratelimit.reserve(1, 2) == pytest.approx([1.5, 2.0], abs=0.02)
    assert ratelimit.reserve(2, 1) == pytest.approx([0], abs=0.02)
    assert ratelimit.reserve(1, 0) == []


def test_the_limiter_hands_out_no_slot_beyond_its_horizon(settings):
    settings.PICTURES_PER_SECOND_PER_ACCOUNT = 2
    settings.PICTURES_QUEUE_AHEAD_SECONDS = 1

    assert ratelimit.reserve(1, 10) == pytest.approx([0, 0.5, 1.0], abs=0.02)
    assert ratelimit.reserve(1, 10) == []


def test_a_slot_frees_up_as_time_passes(settings):
    settings.PICTURES_PER_SECOND_PER_ACCOUNT = 20
    settings.PICTURES_QUEUE_AHEAD_SECONDS = 0

    assert len(ratelimit.reserve(1, 5)) == 1
    assert ratelimit.reserve(1, 5) == []
    time.sleep(0.06)
    assert len(ratelimit.reserve(1, 5)) == 1


@pytest.mark.redis
def test_the_limiter_in_redis_is_one_schedule_for_every_process(settings):
    settings.PICTURES_REDIS_URL = os.environ["CELERY_BROKER_URL"]
    settings.PICTURES_PER_SECOND_PER_ACCOUNT = 2
    settings.PICTURES_QUEUE_AHEAD_SECONDS = 1

    assert ratelimit.reserve(7, 2) == pytest.approx([0, 0.5], abs=0.05)
    ratelimit._memory.clear()  # another process: it shares nothing but Redis
    assert ratelimit.reserve(7, 5) == pytest.approx([1.0], abs=0.05)
    assert ratelimit.reserve(7, 5) == []
    assert ratelimit.reserve(8, 1) == pytest.approx([0], abs=0.05)


def test_without_redis_the_limiter_keeps_to_this_process(settings, caplog):
    settings.PICTURES_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.PICTURES_PER_SECOND_PER_ACCOUNT = 2

    assert ratelimit.reserve(1, 2) == pytest.approx([0, 0.5], abs=0.02)
    assert "Redis failed" in caplog.text


def test_a_busy_account_queues_its_newest_letters_and_leaves_the_rest_for_later(
    member_client, synced, sandbox, queued, settings, django_capture_on_commit_callbacks
):
    settings.PICTURES_PER_SECOND_PER_ACCOUNT = 2
    settings.PICTURES_QUEUE_AHEAD_SECONDS = 1
    session = add_images(sandbox, synced, [f"f{n}" for n in range(5)])
    letters = image_letters(session)

    open_thread(member_client, session, django_capture_on_commit_callbacks)

    assert queued == [
        (letters[4].pk, pytest.approx(0, abs=0.05)),
        (letters[3].pk, pytest.approx(0.5, abs=0.05)),
        (letters[2].pk, pytest.approx(1.0, abs=0.05)),
    ]
    # The others were not claimed: a later open (once there is room) queues them.
    assert MessagePicture.objects.count() == 3
    settings.PICTURES_KEY_PREFIX += "a-minute-later:"  # an empty schedule, as time would make it
    open_thread(member_client, session, django_capture_on_commit_callbacks)
    assert [message_id for message_id, _ in queued[3:]] == [letters[1].pk, letters[0].pk]


def test_thumbnails_go_to_the_images_queue():
    route = app.amqp.router.route({}, "inbox.pictures.tasks.fetch_thumbnail")
    assert route["queue"].name == "images"


# --- the picture replaces the placeholder -----------------------------------------------------


def test_a_stored_thumbnail_replaces_the_placeholder_through_the_poll(
    member_client, synced, sandbox, settings, django_capture_on_commit_callbacks
):
    session = add_images(sandbox, synced, ["g1"])
    letter = image_letters(session)[0]
    # Queued, not yet run: the card shows a placeholder.
    first = open_thread(member_client, session, django_capture_on_commit_callbacks, execute=False)
    assert 'class="image-placeholder is-loading"' in first.content.decode()

    assert services.fetch_thumbnail(letter.pk)  # what the images worker runs

    answer = poll(
        member_client, session, first.context["thread_since"], django_capture_on_commit_callbacks
    )
    html = answer.content.decode()
    thumb = MessagePicture.objects.select_related("picture").get(message=letter, kind="thumb")
    assert f'<img src="/messages/{letter.pk}/picture/thumb/?v={thumb.picture.sha256[:16]}"' in html
    assert "image-placeholder" not in html
    assert 'class="picture-open"' in html
    assert [call["body"]["type"] for call in sandbox.calls_to(DOWNLOAD)] == [3]
    assert sandbox.base_url not in html  # never the upstream's URL
    assert (thumb.picture.width, thumb.picture.height) == (120, 90)
    assert thumb.picture.path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_same_picture_in_two_letters_is_one_file(
    member_client, synced, sandbox, settings, django_capture_on_commit_callbacks
):
    session = add_images(sandbox, synced, ["same", "same", "other"])

    open_thread(member_client, session, django_capture_on_commit_callbacks)

    links = MessagePicture.objects.filter(kind="thumb", picture__isnull=False)
    assert links.count() == 3
    assert StoredPicture.objects.count() == 2
    assert len(picture_files(settings)) == 2
    same = [link.picture_id for link in links.order_by("message_id")][:2]
    assert same[0] == same[1]


def test_storing_the_same_bytes_twice_keeps_one_file(settings, db):
    data = png_bytes(30, 20, "seed")
    from django.db import transaction

    with transaction.atomic():
        first = storage.store(data)
    with transaction.atomic():
        second = storage.store(data)

    assert first.pk == second.pk
    assert first.name.startswith(f"pictures/{first.sha256[:2]}/{first.sha256[2:4]}/")
    assert first.name.endswith(f"{first.sha256}.png")
    assert picture_files(settings) == [first.path]
    assert (first.size, first.width, first.height) == (len(data), 30, 20)


def test_load_image_stores_the_full_size_picture_for_the_lightbox(
    member_client, synced, sandbox, django_capture_on_commit_callbacks
):
    session = add_images(sandbox, synced, ["h1"])
    letter = image_letters(session)[0]
    open_thread(member_client, session, django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        waiting = member_client.post(
            reverse("inbox:load_image", args=[letter.pk]), HTTP_HX_REQUEST="true"
        )
    # The card polls the image view until the picture is there (here: the task ran already).
    assert 'hx-get="/messages/' in waiting.content.decode()
    card = member_client.get(reverse("inbox:image", args=[letter.pk]), HTTP_HX_REQUEST="true")

    html = card.content.decode()
    full = MessagePicture.objects.select_related("picture").get(message=letter, kind="full")
    assert f'data-full="/messages/{letter.pk}/picture/full/?v={full.picture.sha256[:16]}"' in html
    assert "Load image" not in html
    assert "hx-get" not in html  # nothing left to wait for
    assert (full.picture.width, full.picture.height) == (480, 360)  # larger than the thumbnail
    letter.refresh_from_db()
    assert letter.image_fetch_started_at is None and letter.image_url
    assert letter.image_url not in html


# --- refused downloads: visible errors, nothing stored -----------------------------------------


def test_an_oversize_thumbnail_is_refused_with_a_visible_error_and_nothing_stored(
    member_client, synced, sandbox, settings, django_capture_on_commit_callbacks
):
    settings.PICTURES_MAX_BYTES = 200
    session = add_images(sandbox, synced, ["i1"])
    letter = image_letters(session)[0]

    opened = open_thread(member_client, session, django_capture_on_commit_callbacks)
    answer = poll(
        member_client, session, opened.context["thread_since"], django_capture_on_commit_callbacks
    )

    link = MessagePicture.objects.get(message=letter)
    assert link.picture is None and "larger than 200" in link.error
    assert link.next_try_at > timezone.now()
    assert not StoredPicture.objects.exists()
    assert picture_files(settings) == []
    html = answer.content.decode()
    assert "No preview: the picture is larger than 200" in html
    assert "Load image" in html


def test_an_oversize_full_size_picture_is_refused_with_a_visible_error(
    member_client, synced, sandbox, settings, django_capture_on_commit_callbacks
):
    settings.PICTURES_MAX_BYTES = 300
    session = add_images(sandbox, synced, ["j1"])
    letter = image_letters(session)[0]

    with django_capture_on_commit_callbacks(execute=True):
        member_client.post(reverse("inbox:load_image", args=[letter.pk]), HTTP_HX_REQUEST="true")
    card = member_client.get(reverse("inbox:image", args=[letter.pk]), HTTP_HX_REQUEST="true")

    letter.refresh_from_db()
    assert "larger than 300" in letter.image_error
    assert letter.image_fetch_started_at is None
    assert not StoredPicture.objects.exists()
    html = card.content.decode()
    assert "The image could not be loaded: the picture is larger than 300" in html
    assert "Try again" in html


class FileHost(BaseHTTPRequestHandler):
    """A file host that misbehaves in the ways downloads must survive."""

    protocol_version = "HTTP/1.1"
    requested: list[str] = []

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        FileHost.requested.append(self.path)
        if self.path == "/moved.png":
            self.send_response(302)
            self.send_header("Location", "/picture.png")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/page.png":
            self._answer(b"<html><script>alert(1)</script></html>", "image/png")
        elif self.path == "/endless.png":
            # No Content-Length: only counting the bytes as they come finds the size.
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(png_bytes(8, 8, "x") + b"\0" * 5000)
        else:
            self._answer(png_bytes(16, 16, self.path), "image/png")

    def _answer(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def file_host():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FileHost)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize(
    "path, words",
    [
        pytest.param("/moved.png", "HTTP 302", id="redirect"),
        pytest.param("/page.png", "not a JPEG, PNG, GIF or WebP", id="not-a-picture"),
        pytest.param("/endless.png", "larger than", id="no-content-length"),
    ],
)
def test_a_download_the_file_host_spoils_stores_nothing(
    synced, sandbox, settings, file_host, path, words
):
    settings.PICTURES_MAX_BYTES = 1000
    session = add_images(sandbox, synced, ["k1"])
    letter = image_letters(session)[0]
    sandbox.inject("answer", path=DOWNLOAD, data={"fileUrl": file_host + path}, times=2)
    FileHost.requested.clear()

    assert not services.fetch_thumbnail(letter.pk)

    assert words in MessagePicture.objects.get(message=letter).error
    assert not StoredPicture.objects.exists()
    assert picture_files(settings) == []
    assert "/picture.png" not in FileHost.requested  # the redirect was not followed


def test_a_second_run_of_a_thumbnail_task_fetches_nothing(synced, sandbox):
    session = add_images(sandbox, synced, ["l1"])
    letter = image_letters(session)[0]

    assert services.fetch_thumbnail(letter.pk)
    assert services.fetch_thumbnail(letter.pk)

    assert len(sandbox.calls_to(DOWNLOAD)) == 1


@pytest.mark.parametrize(
    "data, expected",
    [
        pytest.param(png_bytes(7, 5, "p"), ("image/png", 7, 5), id="png"),
        pytest.param(b"GIF89a\x0a\x00\x14\x00" + b"\0" * 10, ("image/gif", 10, 20), id="gif"),
        pytest.param(
            b"\xff\xd8\xff\xe0\x00\x04\x00\x00\xff\xc0\x00\x11\x08\x00\x30\x00\x40" + b"\0" * 8,
            ("image/jpeg", 64, 48),
            id="jpeg",
        ),
        pytest.param(
            b"RIFF\0\0\0\0WEBPVP8X"
            + b"\0" * 8
            + (99).to_bytes(3, "little")
            + (49).to_bytes(3, "little"),
            ("image/webp", 100, 50),
            id="webp",
        ),
    ],
)
def test_pictures_are_known_by_their_first_bytes(data, expected):
    sniffed = storage.sniff(data)
    assert (sniffed.content_type, sniffed.width, sniffed.height) == expected


@pytest.mark.parametrize(
    "data",
    [b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"%PDF-1.4", b"", b"\x89PNG"],
)
def test_anything_else_is_not_a_picture(data):
    assert storage.sniff(data) is None


# --- serving: members only, our own bytes ---------------------------------------------------


@pytest.fixture
def stored(synced, sandbox) -> Message:
    """An image letter with its thumbnail stored."""
    session = add_images(sandbox, synced, ["m1"])
    letter = image_letters(session)[0]
    assert services.fetch_thumbnail(letter.pk)
    return letter


def picture(client, letter: Message, kind: str = "thumb", **headers):
    return client.get(reverse("inbox:pictures:picture", args=[letter.pk, kind]), **headers)


def test_a_member_is_served_the_stored_picture_with_private_caching(member_client, stored):
    response = picture(member_client, stored)

    link = MessagePicture.objects.select_related("picture").get(message=stored)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == link.picture.path.read_bytes()
    assert response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "private, max-age=604800"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["ETag"] == f'"{link.picture.sha256}"'
    again = picture(member_client, stored, HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304


def test_pictures_are_404_to_non_members_and_for_unknown_ids(
    client, member_client, stored, outsider
):
    assert picture(member_client, stored, "full").status_code == 404  # not stored
    missing = reverse("inbox:pictures:picture", args=[stored.pk + 10_000, "thumb"])
    assert member_client.get(missing).status_code == 404
    assert member_client.get(f"/messages/{stored.pk}/picture/other/").status_code == 404
    assert (
        member_client.post(reverse("inbox:pictures:picture", args=[stored.pk, "thumb"])).status_code
        == 405
    )

    client.force_login(outsider)
    assert picture(client, stored).status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(client, stored):
    response = picture(client, stored)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_showing_a_picture_keeps_it_from_the_retention_sweep(member_client, stored):
    month_ago = timezone.now() - timedelta(days=30)
    StoredPicture.objects.update(last_used_at=month_ago)

    picture(member_client, stored)

    assert StoredPicture.objects.get().last_used_at > timezone.now() - timedelta(minutes=1)


def test_the_page_never_carries_the_upstreams_url(
    member_client, stored, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        member_client.post(reverse("inbox:load_image", args=[stored.pk]), HTTP_HX_REQUEST="true")
    stored.refresh_from_db()
    assert stored.image_url

    html = member_client.get(stored.session.get_absolute_url()).content.decode()

    assert stored.image_url not in html
    assert "/_sandbox/files/" not in html
    assert f"/messages/{stored.pk}/picture/thumb/?v=" in html
    assert f"/messages/{stored.pk}/picture/full/?v=" in html
    # The lightbox comes with the full page, in its own static file (the CSP allows no inline).
    assert 'id="lightbox"' in html and "inbox/pictures.js" in html


# --- retention ---------------------------------------------------------------------------


def test_the_sweep_deletes_pictures_nobody_was_shown_and_the_letter_says_so(
    member_client, stored, settings, django_capture_on_commit_callbacks
):
    settings.PICTURES_RETENTION_DAYS = 30
    link = MessagePicture.objects.select_related("picture").get(message=stored)
    path = link.picture.path
    StoredPicture.objects.update(last_used_at=timezone.now() - timedelta(days=31))
    since = timezone.now()

    result = services.prune_pictures()

    assert (result.pictures, result.letters) == (1, 1)
    assert not path.exists()
    assert not StoredPicture.objects.exists()
    link.refresh_from_db()
    assert link.picture is None and link.expired_at is not None
    stored.refresh_from_db()
    assert stored.updated_at >= since  # open threads redraw the card
    assert picture(member_client, stored).status_code == 404
    # Opening the thread does not fetch it again by itself; "Load image" does.
    html = open_thread(
        member_client, stored.session, django_capture_on_commit_callbacks
    ).content.decode()
    assert "This picture was deleted after 30 days without being viewed." in html
    assert "Load image" in html
    assert len(MessagePicture.objects.filter(picture__isnull=False)) == 0


def test_a_picture_loaded_again_after_expiry_is_no_longer_expired(
    member_client, stored, settings, django_capture_on_commit_callbacks
):
    settings.PICTURES_RETENTION_DAYS = 1
    StoredPicture.objects.update(last_used_at=timezone.now() - timedelta(days=2))
    services.prune_pictures()

    with django_capture_on_commit_callbacks(execute=True):
        member_client.post(reverse("inbox:load_image", args=[stored.pk]), HTTP_HX_REQUEST="true")
    card = member_client.get(reverse("inbox:image", args=[stored.pk]), HTTP_HX_REQUEST="true")

    html = card.content.decode()
    assert "deleted after" not in html
    assert f"/messages/{stored.pk}/picture/full/?v=" in html


def test_the_sweep_keeps_what_was_shown_recently_and_deletes_what_no_letter_uses(
    stored, synced, sandbox, settings
):
    settings.PICTURES_RETENTION_DAYS = 30
    kept = MessagePicture.objects.get(message=stored).picture
    other = add_images(sandbox, synced, ["n1"])
    orphan_letter = image_letters(other)[-1]
    assert services.fetch_thumbnail(orphan_letter.pk)
    orphan = MessagePicture.objects.get(message=orphan_letter).picture
    Message.objects.filter(pk=orphan_letter.pk).delete()  # its links go with it

    result = services.prune_pictures()

    assert result.pictures == 1
    assert list(StoredPicture.objects.all()) == [kept]
    assert kept.path.exists() and not orphan.path.exists()


def test_the_sweep_deletes_stray_files_once_they_are_old(stored, settings):
    folder = settings.MEDIA_ROOT / "pictures" / "ab" / "cd"
    folder.mkdir(parents=True)
    old, young = folder / ("ab" * 32 + ".png"), folder / ".incoming-x1"
    old.write_bytes(b"x")
    young.write_bytes(b"y")
    hours_ago = time.time() - 2 * 3600
    os.utime(old, (hours_ago, hours_ago))

    result = services.prune_pictures()

    assert result.stray_files == 1
    assert not old.exists() and young.exists()
    assert MessagePicture.objects.get(message=stored).picture.path.exists()


def test_prune_pictures_command_dry_run_deletes_nothing(stored, settings, capsys):
    settings.PICTURES_RETENTION_DAYS = 30
    StoredPicture.objects.update(last_used_at=timezone.now() - timedelta(days=40))

    call_command("prune_pictures", "--dry-run")
    assert "Would delete 1 picture(s)" in capsys.readouterr().out
    assert StoredPicture.objects.count() == 1

    call_command("prune_pictures")
    out = capsys.readouterr().out
    assert "Deleted 1 picture(s)" in out and "shown in 1 letter(s)" in out
    assert not StoredPicture.objects.exists()


def test_retention_zero_keeps_pictures_for_ever(stored, settings):
    settings.PICTURES_RETENTION_DAYS = 0
    StoredPicture.objects.update(last_used_at=timezone.now() - timedelta(days=4000))

    assert services.prune_pictures().pictures == 0
    assert StoredPicture.objects.count() == 1


def test_beat_runs_the_sweep_daily(stored, settings):
    from django.conf import settings as live_settings

    entry = live_settings.CELERY_BEAT_SCHEDULE["prune-pictures"]
    assert entry["task"] == "inbox.pictures.tasks.prune_pictures"
    assert entry["schedule"] == 24 * 3600
    settings.PICTURES_RETENTION_DAYS = 1
    StoredPicture.objects.update(last_used_at=timezone.now() - timedelta(days=2))

    assert tasks.prune_pictures.delay().get() == 1
    assert not StoredPicture.objects.exists()


def test_a_full_size_download_the_upstream_refuses_releases_the_letter(
    member_client, synced, sandbox, django_capture_on_commit_callbacks
):
    session = add_images(sandbox, synced, ["o1"])
    letter = image_letters(session)[0]
    sandbox.inject("ret_500", path=DOWNLOAD, times=3)

    assert not images.fetch_image_url(letter.pk)

    letter.refresh_from_db()
    assert letter.image_error and letter.image_fetch_started_at is None
    assert not MessagePicture.objects.filter(kind="full").exists()


def test_a_stored_picture_outlives_the_upstreams_url(
    member_client, stored, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        member_client.post(reverse("inbox:load_image", args=[stored.pk]), HTTP_HX_REQUEST="true")
    # A week later the upstream's URL is dead; our copy is not.
    Message.objects.filter(pk=stored.pk).update(
        image_url_expires_at=timezone.now() - timedelta(days=1)
    )

    html = member_client.get(stored.session.get_absolute_url()).content.decode()

    assert f'data-full="/messages/{stored.pk}/picture/full/?v=' in html
    assert picture(member_client, stored, "full").status_code == 200
