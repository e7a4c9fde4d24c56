"""Viewers' avatars: contactList gives a picture's address (headUrl), the worker downloads it once
and we serve our copy, so the browser never calls the CDN (support desks sit behind firewalls,
and the CDN would learn who is reading which viewer's profile). Until a copy exists, the panel
shows the viewer's initial.

A download runs on the `images` queue, bounded like a picture's (IMAGE_FETCH_SECONDS, short
timeouts, no retries), and a viewer has at most one queued at a time: request_avatar claims the
viewer with avatar_requested_at in a conditional UPDATE, and the download releases it. A failed
attempt is not repeated for AVATAR_RETRY_AFTER, however often the profile is opened.

The upstream may be hostile: redirects are not followed, the body is capped at
AVATAR_MAX_BYTES, and only a PNG, JPEG, GIF or WebP (by its first bytes, whatever the headers
say) is kept, under a name made of its SHA-256, never of anything the upstream chose.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import timedelta
from functools import partial

import requests
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.client import VideosApiError
from inbox.bulk import bound_cursor
from inbox.images import unusable_url
from inbox.payloads import clean_text
from inbox.services import image_type, my_identity
from inbox.sync import is_channels_name
from inbox.viewers.linking import ensure_viewers
from inbox.viewers.models import Viewer

log = logging.getLogger(__name__)

AVATAR_MAX_BYTES = 1 << 20  # WeChat's avatars are 132 px JPEGs of a few KB; 1 MB is generous
AVATAR_RETRY_AFTER = timedelta(days=1)
# New pictures queued at once per contactList round (a sync pass's new peers); more wait for
# their profile to be opened.
EAGER_DOWNLOADS = 50
CONNECT_TIMEOUT = 3
CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}
NICKNAME_LENGTH = Viewer._meta.get_field("nickname").max_length
URL_LENGTH = Viewer._meta.get_field("avatar_url_seen").max_length
ERROR_LENGTH = Viewer._meta.get_field("avatar_error").max_length


class AvatarUnavailable(Exception):
    """Why a viewer has no picture (yet); safe to store and show to staff."""


def contact_details(peer: str, entries: list[dict]) -> tuple[str, str]:
    """(nickname, picture URL) of `peer` in a contactList answer; "" for what it does not give.
    The documented field is headUrl; getProfile's headImgUrl is accepted too."""
    for entry in entries:
        if entry.get("username") != peer:
            continue
        nickname = entry.get("nickname")
        url = entry.get("headUrl") or entry.get("headImgUrl")
        return (
            clean_text(nickname).strip()[:NICKNAME_LENGTH] if isinstance(nickname, str) else "",
            url.strip() if isinstance(url, str) and unusable_url(url.strip()) is None else "",
        )
    return "", ""


def remember_contacts(answers: dict[str, list[dict]]) -> int:
    """Store what contactList said about these peers (user name → its answer): each viewer's
    nickname, and a new picture URL, whose download is queued. Viewers not linked yet are made
    here. Three statements for the lot, whatever its size (a backfill hands over 500 at a
    time). Returns how many downloads it queued (a duplicate, should another process queue the
    same one, only stores the same file)."""
    details = {peer: contact_details(peer, entries) for peer, entries in answers.items()}
    details = {peer: found for peer, found in details.items() if any(found)}
    if not details:
        return 0
    ensure_viewers(details)
    now = timezone.now()
    changed, fetch = [], []
    stored = Viewer.objects.filter(username__in=details).values_list(
        "pk", "username", "nickname", "avatar_url_seen", "avatar_requested_at", "avatar_fetched_at"
    )
    for pk, username, nickname, url_seen, requested_at, fetched_at in stored:
        new_nickname, url = details[username]
        if url and url != url_seen:
            # The last attempt was for another picture: this one may go at once. The first
            # EAGER_DOWNLOADS are claimed and queued now; the rest (a backfill's thousands)
            # wait for their profile to be opened (request_avatar) instead of flooding the
            # queue. The old picture stays until the new one is in.
            url_seen, fetched_at = url[:URL_LENGTH], None
            requested_at = now if len(fetch) < EAGER_DOWNLOADS else None
            if requested_at:
                fetch.append(pk)
        elif not new_nickname or new_nickname == nickname:
            continue
        changed.append((pk, new_nickname or nickname, url_seen, requested_at, fetched_at))
    _save_contact_fields(changed)
    for viewer_id in fetch:
        transaction.on_commit(partial(_publish, viewer_id))
    return len(fetch)


def _save_contact_fields(rows: list[tuple]) -> None:
    """(pk, nickname, avatar_url_seen, avatar_requested_at, avatar_fetched_at) rows, in one
    UPDATE on PostgreSQL (arrays bound in binary); on SQLite one prepared UPDATE per row."""
    if not rows:
        return
    table = connection.ops.quote_name(Viewer._meta.db_table)
    if connection.vendor == "postgresql":
        with bound_cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS v SET nickname = u.nickname, avatar_url_seen = u.url, "
                "avatar_requested_at = u.requested_at, avatar_fetched_at = u.fetched_at "
                "FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::timestamptz[], "
                "%b::timestamptz[]) AS u(id, nickname, url, requested_at, fetched_at) "
                "WHERE v.id = u.id",
                [list(column) for column in zip(*rows, strict=True)],
            )
        return
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET nickname = %s, avatar_url_seen = %s, avatar_requested_at = %s, "
            "avatar_fetched_at = %s WHERE id = %s",
            [
                (nickname, url, adapt(requested_at), adapt(fetched_at), pk)
                for pk, nickname, url, requested_at, fetched_at in rows
            ],
        )


def wants_avatar(viewer: Viewer, now=None) -> bool:
    """No picture yet, and no attempt running or failed recently."""
    now = now or timezone.now()
    if viewer.avatar:
        return False
    last = max(filter(None, (viewer.avatar_requested_at, viewer.avatar_fetched_at)), default=None)
    return last is None or last < now - _retry_after(viewer)


def _retry_after(viewer: Viewer) -> timedelta:
    # A running claim expires like a picture download's; a finished attempt waits a day.
    if viewer.avatar_fetched_at is None:
        return timedelta(seconds=settings.IMAGE_FETCH_CLAIM_SECONDS)
    return AVATAR_RETRY_AFTER


def request_avatar(viewer: Viewer) -> bool:
    """Queue a download for `viewer` unless it has its picture, one is on its way, or the last
    attempt failed less than AVATAR_RETRY_AFTER ago. True when this call queued one."""
    now = timezone.now()
    if not wants_avatar(viewer, now):
        return False
    claim_expired = now - timedelta(seconds=settings.IMAGE_FETCH_CLAIM_SECONDS)
    retry_expired = now - AVATAR_RETRY_AFTER
    claimed = (
        Viewer.objects.filter(pk=viewer.pk, avatar="")
        .filter(Q(avatar_requested_at__isnull=True) | Q(avatar_requested_at__lt=claim_expired))
        .filter(Q(avatar_fetched_at__isnull=True) | Q(avatar_fetched_at__lt=retry_expired))
        .update(avatar_requested_at=now)
    )
    if not claimed:
        return False
    viewer.avatar_requested_at = now
    transaction.on_commit(partial(_publish, viewer.pk))
    return True


def _publish(viewer_id: int) -> None:
    from inbox.tasks import fetch_viewer_avatar  # tasks import this module's callers

    try:
        fetch_viewer_avatar.delay(viewer_id)
    except Exception:
        # A broker that is down must not fail the page that asked; the claim expires and the
        # next opening of the profile asks again.
        log.exception("could not queue the avatar download of viewer %s", viewer_id)


def fetch_avatar(viewer_id: int) -> bool:
    """Download the viewer's picture (asking contactList for its address first if we have none)
    and keep it; record why not otherwise. True when the viewer has a picture now."""
    viewer = Viewer.objects.filter(pk=viewer_id).first()
    if viewer is None:
        return False
    if viewer.avatar and viewer.avatar_fetched_at:
        finish(viewer_id)  # this picture is in already (a duplicate task)
        return True
    deadline = time.monotonic() + settings.IMAGE_FETCH_SECONDS
    try:
        url = viewer.avatar_url_seen or _look_up_url(viewer, deadline)
        data, extension = download(url, deadline)
    except AvatarUnavailable as exc:
        log.info("no avatar for viewer %s: %s", viewer_id, exc)
        finish(viewer_id, str(exc))
        return False
    digest = hashlib.sha256(data).hexdigest()
    name = f"avatars/{digest[:2]}/{digest}.{extension}"
    if not default_storage.exists(name):
        name = default_storage.save(name, ContentFile(data))
    Viewer.objects.filter(pk=viewer_id).update(
        avatar=name, avatar_error="", avatar_fetched_at=timezone.now(), avatar_requested_at=None
    )
    return True


def finish(viewer_id: int, error: str = "") -> None:
    """End the viewer's pending download, with the reason it failed."""
    Viewer.objects.filter(pk=viewer_id).update(
        avatar_requested_at=None,
        avatar_fetched_at=timezone.now(),
        avatar_error=clean_text(error)[:ERROR_LENGTH],
    )


def _look_up_url(viewer: Viewer, deadline: float) -> str:
    """The picture's URL from contactList, asked through one of the viewer's conversations (as
    the identity they wrote to); the nickname in the same answer is kept too."""
    link = viewer.links.select_related("session__account").first()
    if link is None:
        raise AvatarUnavailable("the viewer has no conversation to ask contactList through")
    session = link.session
    me = my_identity(session)
    if not is_channels_name(me):
        raise AvatarUnavailable("the account has no Channels identity to ask contactList as")
    options = {"connect_timeout": CONNECT_TIMEOUT, "retries": 0, "deadline": deadline}
    try:
        with session.account.client(**options) as client:
            entries = client.contact_list(my_username=me, query=viewer.username)
    except VideosApiError as exc:
        raise AvatarUnavailable(f"contactList failed: {exc}") from None
    nickname, url = contact_details(viewer.username, entries)
    updates = {"avatar_url_seen": url[:URL_LENGTH]}
    if nickname:
        updates["nickname"] = nickname
    Viewer.objects.filter(pk=viewer.pk).update(**updates)
    if not url:
        raise AvatarUnavailable("contactList gives no picture for this viewer")
    return url


def download(url: str, deadline: float) -> tuple[bytes, str]:
    """The picture at `url` and its extension, within the deadline, or AvatarUnavailable."""
    problem = unusable_url(url)
    if problem:
        raise AvatarUnavailable(problem)
    left = deadline - time.monotonic()
    if left <= 0:
        raise AvatarUnavailable("out of time")
    timeout = (min(CONNECT_TIMEOUT, left), min(settings.IMAGE_FETCH_READ_TIMEOUT, left))
    try:
        with requests.get(
            url, stream=True, allow_redirects=False, timeout=timeout, headers={"Accept": "image/*"}
        ) as response:
            if response.is_redirect or 300 <= response.status_code < 400:
                raise AvatarUnavailable(f"HTTP {response.status_code}: redirect not followed")
            if response.status_code != 200:
                raise AvatarUnavailable(f"HTTP {response.status_code}")
            data = _read_capped(response, deadline)
    except requests.RequestException as exc:
        raise AvatarUnavailable(f"download failed ({type(exc).__name__})") from None
    extension = image_type(data[:16])
    if extension is None:
        raise AvatarUnavailable("not a PNG, JPEG, GIF or WebP image")
    return data, extension


def _read_capped(response: requests.Response, deadline: float) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > AVATAR_MAX_BYTES:
        raise AvatarUnavailable(f"larger than {AVATAR_MAX_BYTES} bytes")
    chunks, size = [], 0
    for chunk in response.iter_content(chunk_size=64 * 1024):
        size += len(chunk)
        if size > AVATAR_MAX_BYTES:
            raise AvatarUnavailable(f"larger than {AVATAR_MAX_BYTES} bytes")
        # The read timeout is per read: a body trickling in could otherwise outlast it.
        if time.monotonic() > deadline:
            raise AvatarUnavailable("the picture was still arriving at the deadline")
        chunks.append(chunk)
    return b"".join(chunks)
