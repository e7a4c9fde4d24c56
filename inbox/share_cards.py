"""What a shared item in an app message (MsgType 49) carries, read from its <appmsg> element
into a ShareCard: a Channels video (appmsg type 51, <finderFeed>), a Channels live (type 63,
<finderLive>), a mini program, a link, or any other app message.

Pure and defensive: the element comes from defusedxml (inbox.payloads parses the XML), every
string is cleaned of control and direction-override characters and cut to a fixed length, every
number is checked, and every URL must be a plain absolute http(s) one. A field that is missing or
unusable is left out; only numbers of the wrong type are reported (as notes), since they say the
XML is not what the upstream sends. Nothing here ever keeps the XML itself.

The card is stored in Message.image_meta as {"card": {...}} (see ShareCard.to_dict) and its
title in Message.title, which the session list's preview shows.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import Any
from urllib.parse import SplitResult, urlsplit
from xml.etree.ElementTree import Element

# Bumped when the card's shape or reading changes: every stored card then differs from a fresh
# reading, so reparse_app_messages rewrites them.
CARD_VERSION = 1

VIDEO, LIVE, MINI_PROGRAM, LINK, APP = "video", "live", "mini_program", "link", "app"
KINDS = (VIDEO, LIVE, MINI_PROGRAM, LINK, APP)
# appmsg <type> numbers: 51 is a Channels feed (video) share, 63 a Channels live share; 33 and
# 36 are mini programs; 5 (and a few rarer ones) are web links.
FINDER_FEED_TYPE, FINDER_LIVE_TYPE = 51, 63
MINI_PROGRAM_TYPES = frozenset({33, 36})

TITLE_LENGTH = 200
AUTHOR_LENGTH = 100
DESCRIPTION_LENGTH = 500
URL_LENGTH = 2000
ID_LENGTH = 40
USERNAME_LENGTH = 200
MAX_DIMENSION = 20_000
MAX_DURATION = 7 * 24 * 3600

# C0/C1 controls (tab and newline are whitespace, handled apart), bidirectional overrides and
# isolates (they can make a title read backwards), zero-width and other invisible formatting.
_INVISIBLE = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]"
)
_SPACES = re.compile(r"\s+")
_DIGITS = re.compile(r"[0-9]+")
_LEADING_DIGITS = re.compile(r"[0-9]{1,9}")
# Hosts of WeChat's own picture CDNs: the server downloads a card's cover from there and the
# page shows our stored copy (inbox.pictures); the browser never loads a URL from the XML. Any
# other URL in the XML (a link card's thumbnail can name any host, and a sender's client writes
# the XML) is kept on the card but never fetched: the server would otherwise request whatever
# address a sender chose, and tell its owner when the letter was opened.
TRUSTED_PICTURE_HOSTS = ("qq.com", "qpic.cn", "qlogo.cn")


@dataclass(frozen=True, slots=True)
class ShareCard:
    """A shared item as the thread shows it. `cover_url`/`avatar_url` are the XML's picture
    URLs; `feed_id` the feed's objectId or the live's finderLiveID; `duration` in seconds;
    `live_status` the live's state when it was shared (1 live, 2 ended)."""

    kind: str = APP
    title: str = ""
    author: str = ""
    author_username: str = ""
    avatar_url: str = ""
    description: str = ""
    url: str = ""
    cover_url: str = ""
    cover_width: int | None = None
    cover_height: int | None = None
    feed_id: str = ""
    duration: int | None = None
    live_status: int | None = None
    version: int = CARD_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The card as stored: empty fields left out, so a card costs what it carries."""
        return {key: value for key, value in asdict(self).items() if value not in ("", None)}

    @classmethod
    def from_dict(cls, data: Any) -> ShareCard | None:
        """A stored card back, or None when `data` is not one (a row from before cards, or a
        value this version does not know); fields of the wrong type fall back to defaults."""
        if not isinstance(data, dict):
            return None
        values = {}
        for name, python_type in _FIELD_TYPES.items():
            value = data.get(name)
            if isinstance(value, python_type) and not isinstance(value, bool):
                values[name] = value
        if values.get("kind") not in KINDS:
            values["kind"] = APP
        return cls(**values)


# Each field's stored type (the annotations are strings: "int | None", "str").
_FIELD_TYPES = {spec.name: int if "int" in str(spec.type) else str for spec in fields(ShareCard)}


def read_share_card(appmsg: Element) -> tuple[ShareCard, int | None, list[str]]:
    """An <appmsg> element → (its card, its appmsg type, notes on values of the wrong type)."""
    notes: list[str] = []
    app_type = _number(appmsg.findtext("type"), "type", notes, high=2**31 - 1)
    feed = appmsg.find("finderFeed")
    live = appmsg.find("finderLive")
    if app_type == FINDER_LIVE_TYPE or (app_type != FINDER_FEED_TYPE and _carries(live)):
        card = _live_card(live, notes) if live is not None else _fallback(appmsg, LIVE)
    elif app_type == FINDER_FEED_TYPE or _carries(feed):
        card = _feed_card(feed, notes) if feed is not None else _fallback(appmsg, VIDEO)
    else:
        card = _app_card(appmsg, app_type)
    return card, app_type, notes


def _carries(element: Element | None) -> bool:
    """Whether a <finderFeed>/<finderLive> holds a share: WeChat writes empty ones (ids 0,
    no nickname) into unrelated app messages such as mini programs."""
    if element is None:
        return False
    return bool(
        _text(element.findtext("nickname"), AUTHOR_LENGTH)
        or _identifier(element.findtext("objectId"))
        or _identifier(element.findtext("finderLiveID"))
    )


def _fallback(appmsg: Element, kind: str) -> ShareCard:
    """A Channels share without its <finderFeed>/<finderLive> (older clients): the appmsg's
    own title and description. With the element present the appmsg title is only WeChat's
    "please upgrade" notice, so it is never used then."""
    return ShareCard(
        kind=kind,
        title=_text(appmsg.findtext("title"), TITLE_LENGTH),
        description=_text(appmsg.findtext("des"), DESCRIPTION_LENGTH, keep_lines=True),
    )


def _feed_card(feed: Element, notes: list[str]) -> ShareCard:
    media = feed.find("mediaList/media")
    cover_url = _first_url(media, ("thumbUrl", "coverUrl", "fullCoverUrl"))
    return ShareCard(
        kind=VIDEO,
        title=_text(feed.findtext("desc"), TITLE_LENGTH),
        author=_text(feed.findtext("nickname"), AUTHOR_LENGTH),
        author_username=_text(feed.findtext("username"), USERNAME_LENGTH),
        avatar_url=_url(feed.findtext("avatar")),
        cover_url=cover_url,
        cover_width=_dimension(media, "width", notes) if cover_url else None,
        cover_height=_dimension(media, "height", notes) if cover_url else None,
        feed_id=_identifier(feed.findtext("objectId")),
        duration=_duration(media),
    )


def _live_card(live: Element, notes: list[str]) -> ShareCard:
    media = live.find("media")
    # Some clients put the cover straight under <finderLive>, most inside <media>.
    cover_from = media if _first_url(media, ("thumbUrl", "coverUrl")) else live
    cover_url = _first_url(cover_from, ("thumbUrl", "coverUrl"))
    status = _number(live.findtext("liveStatus"), "liveStatus", notes, low=-1, high=99)
    return ShareCard(
        kind=LIVE,
        title=_text(live.findtext("desc"), TITLE_LENGTH),
        author=_text(live.findtext("nickname"), AUTHOR_LENGTH),
        author_username=_text(live.findtext("finderUsername"), USERNAME_LENGTH),
        avatar_url=_url(live.findtext("headUrl")),
        cover_url=cover_url,
        cover_width=_dimension(cover_from, "width", notes) if cover_url else None,
        cover_height=_dimension(cover_from, "height", notes) if cover_url else None,
        feed_id=_identifier(live.findtext("finderLiveID")),
        live_status=status if status is not None and status >= 0 else None,
    )


def _app_card(appmsg: Element, app_type: int | None) -> ShareCard:
    url = _url(appmsg.findtext("url"))
    if app_type in MINI_PROGRAM_TYPES:
        kind = MINI_PROGRAM
    elif url:
        kind = LINK
    else:
        kind = APP
    return ShareCard(
        kind=kind,
        title=_text(appmsg.findtext("title"), TITLE_LENGTH),
        author=_text(appmsg.findtext("sourcedisplayname"), AUTHOR_LENGTH),
        description=_text(appmsg.findtext("des"), DESCRIPTION_LENGTH, keep_lines=True),
        url=url,
        cover_url=_url(appmsg.findtext("thumburl")),
    )


def _text(value: str | None, length: int, *, keep_lines: bool = False) -> str:
    """Readable text: invisible characters dropped, runs of spaces (and, unless `keep_lines`,
    line breaks) made one space, cut to `length` with an ellipsis."""
    if not value:
        return ""
    value = _INVISIBLE.sub("", value)
    if keep_lines:
        value = "\n".join(_SPACES.sub(" ", line).strip() for line in value.splitlines())
        value = re.sub(r"\n{3,}", "\n\n", value).strip()
    else:
        value = _SPACES.sub(" ", value).strip()
    return value if len(value) <= length else value[: length - 1] + "…"


def _url(value: str | None) -> str:
    """An absolute http(s) URL fit to put in an attribute, or "" (a cut URL is a broken one)."""
    value = (value or "").strip()
    if not value or len(value) > URL_LENGTH or not value.isprintable() or " " in value:
        return ""
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unclosed [IPv6] host
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return ""
    if parts.scheme.lower() == "http" and _is_trusted_host(parts.hostname):
        # WeChat's CDNs answer https too; an http picture on an https page would be blocked.
        value = "https" + value[len(parts.scheme) :]
    return value


def is_trusted_picture(url: str, upstream_url: str = "") -> bool:
    """Whether the server may download a card's picture URL: https on WeChat's picture CDNs, or
    anything at the origin (scheme, host and port) of `upstream_url`, the account's configured
    upstream. That origin is one the server already calls with the account's token, so trusting
    it opens no new door; it is where the sandbox upstream serves the covers of its shares
    (/_sandbox/covers/), which is what makes covers real in the demo and in tests without
    letting a test or the sandbox name any other host."""
    if not url:
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
        if upstream_url and host and _origin(parts) == _origin(urlsplit(upstream_url)):
            return True
    except ValueError:  # an unclosed [IPv6] host, or a port out of range
        return False
    return bool(host) and url.startswith("https://") and _is_trusted_host(host)


def _origin(parts: SplitResult) -> tuple[str, str, int | None]:
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").rstrip("."), port


def _is_trusted_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    return any(host == suffix or host.endswith("." + suffix) for suffix in TRUSTED_PICTURE_HOSTS)


def _first_url(element: Element | None, names: tuple[str, ...]) -> str:
    if element is None:
        return ""
    for name in names:
        url = _url(element.findtext(name))
        if url:
            return url
    return ""


def _identifier(value: str | None) -> str:
    """A feed or live id: digits (they exceed 64 bits, so kept as text), "0" meaning none."""
    value = (value or "").strip()
    if _DIGITS.fullmatch(value) and len(value) <= ID_LENGTH and value.strip("0"):
        return value
    return ""


def _number(
    value: str | None, name: str, notes: list[str], *, low: int = 0, high: int = MAX_DIMENSION
) -> int | None:
    value = (value or "").strip()
    if not value:
        return None
    negative = value.startswith("-")
    digits = value[1:] if negative else value
    if _DIGITS.fullmatch(digits) and len(digits) <= 10:
        number = -int(digits) if negative else int(digits)
        if low <= number <= high:
            return number
    notes.append(f"{name} {value[:20]!r} is not a number in range")
    return None


def _dimension(element: Element | None, name: str, notes: list[str]) -> int | None:
    if element is None:
        return None
    number = _number(element.findtext(name), name, notes)
    return number or None


def _duration(media: Element | None) -> int | None:
    """Seconds of video. Lenient: real shares carry values such as "10>>" (seen in the wild),
    which mean 10 seconds; anything without leading digits is no duration."""
    if media is None:
        return None
    match = _LEADING_DIGITS.match((media.findtext("videoPlayDuration") or "").strip())
    if match is None:
        return None
    seconds = int(match.group())
    return seconds if 0 < seconds <= MAX_DURATION else None
