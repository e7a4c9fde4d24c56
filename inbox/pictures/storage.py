"""Fetching a picture's bytes and keeping them: one file per distinct content under
MEDIA_ROOT/pictures/ab/cd/<sha256>.<ext>.

The download is as careful as the upstream's own calls: no redirects (the URL is the upstream's
answer, not wherever a file host sends us), a byte cap read as the bytes arrive (a missing or
false Content-Length changes nothing), and the caller's deadline. What arrives must be a JPEG,
PNG, GIF or WebP by its first bytes, whatever the file host says its type is, so nothing else
can be served back from our origin."""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
import time
from dataclasses import dataclass

import requests
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from inbox.pictures.models import StoredPicture

CHUNK = 64 << 10
CONNECT_TIMEOUT = 3


class PictureRefused(Exception):
    """Why a picture was not stored; the letter shows it."""


@dataclass(frozen=True)
class Sniffed:
    content_type: str
    width: int | None = None
    height: int | None = None


def download(url: str, *, deadline: float, max_bytes: int | None = None) -> bytes:
    """The bytes at `url`, or PictureRefused: not an HTTP 200 (a redirect included), larger than
    `max_bytes` (PICTURES_MAX_BYTES), or not finished by `deadline` (a time.monotonic() value)."""
    max_bytes = settings.PICTURES_MAX_BYTES if max_bytes is None else max_bytes
    left = deadline - time.monotonic()
    if left <= 0:
        raise PictureRefused("no time was left to download the picture")
    try:
        with requests.get(
            url,
            stream=True,
            allow_redirects=False,
            timeout=(min(CONNECT_TIMEOUT, left), left),
            headers={"Accept": "image/*"},
        ) as response:
            if response.status_code != 200:
                raise PictureRefused(f"the file host answered HTTP {response.status_code}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise too_large(max_bytes)
            body = bytearray()
            for chunk in response.iter_content(CHUNK):
                body += chunk
                if len(body) > max_bytes:
                    raise too_large(max_bytes)
                if time.monotonic() > deadline:
                    raise PictureRefused("the file host sent the picture too slowly")
    except requests.RequestException as exc:
        raise PictureRefused(f"the picture could not be downloaded ({type(exc).__name__})") from exc
    if not body:
        raise PictureRefused("the file host sent an empty file")
    return bytes(body)


def too_large(max_bytes: int) -> PictureRefused:
    return PictureRefused(
        f"the picture is larger than {filesizeformat(max_bytes)}, the most this inbox keeps"
    )


def store(data: bytes) -> StoredPicture:
    """The StoredPicture for `data`, its file written if it is not on disk yet. Call it inside
    the transaction that links it: the row is locked there, so the retention sweep cannot delete
    the file between this write and the link."""
    sniffed = sniff(data)
    if sniffed is None:
        raise PictureRefused("the file is not a JPEG, PNG, GIF or WebP picture")
    sha = hashlib.sha256(data).hexdigest()
    picture, _ = StoredPicture.objects.select_for_update().get_or_create(
        sha256=sha,
        defaults={
            "size": len(data),
            "content_type": sniffed.content_type,
            "width": sniffed.width,
            "height": sniffed.height,
        },
    )
    if not picture.path.is_file():
        _write_atomically(picture.path, data)
    StoredPicture.objects.filter(pk=picture.pk).update(last_used_at=timezone.now())
    return picture


def _write_atomically(path, data: bytes) -> None:
    """Write to a temporary file beside `path` and rename it into place: a reader (or a crash)
    never sees half a picture."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def sniff(data: bytes) -> Sniffed | None:
    """The picture's type by its first bytes (and its size when the header says it cheaply), or
    None when it is none of the four types browsers show everywhere."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        width, height = struct.unpack(">II", data[16:24]) if len(data) >= 24 else (None, None)
        return Sniffed("image/png", width, height)
    if data[:6] in (b"GIF87a", b"GIF89a"):
        width, height = struct.unpack("<HH", data[6:10]) if len(data) >= 10 else (None, None)
        return Sniffed("image/gif", width, height)
    if data.startswith(b"\xff\xd8\xff"):
        return Sniffed("image/jpeg", *_jpeg_size(data))
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return Sniffed("image/webp", *_webp_size(data))
    return None


# JPEG start-of-frame markers (every SOFn but the DHT, JPG and DAC markers that share the range).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: bytes) -> tuple[int | None, int | None]:
    """Walk the JPEG's segments to its frame header, which holds the size."""
    position = 2
    while position + 9 < len(data):
        if data[position] != 0xFF:
            return None, None
        marker = data[position + 1]
        if marker in _SOF_MARKERS:
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return width, height
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        position += 2 + length
    return None, None


def _webp_size(data: bytes) -> tuple[int | None, int | None]:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None, None
