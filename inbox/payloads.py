"""Upstream JSON → typed records. Pure functions: no database, no network, no exceptions for bad
items.

Every field of an item is optional-tolerant: a value of the wrong type or out of range becomes a
default plus a note in `parse_error`, so the letter is still stored. Only an item without a usable
NewMsgId or msgSessionId (nothing to dedupe on, no conversation to put it in) is quarantined.
Strings are cleaned of what PostgreSQL refuses (NUL, lone surrogates) and cut to their column's
length, so one hostile item can never make a whole page fail to commit.
"""

from __future__ import annotations

import hashlib
import json
import re
import reprlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as parse_xml_safely

from inbox.share_cards import ShareCard, read_share_card

UINT64_MAX = 2**64 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
# Image and app-message XML is a few KB; anything this large is not worth parsing.
MAX_XML_BYTES = 256 * 1024
# Column lengths the records are cut to (they mirror inbox.models).
ID_LENGTH = 200
EXT_INFO_LENGTH = 500
TITLE_LENGTH = 500
# Unix seconds from 2000 to 2100: anything outside is not a real CreateTime.
MIN_CREATE_TIME, MAX_CREATE_TIME = 946_684_800, 4_102_444_800

IMAGE = 3
APP = 49
# str.isdigit() also accepts "²" and other digits int() refuses; upstream numbers are ASCII.
_DIGITS = re.compile(r"[0-9]+")
_INTEGER = re.compile(r"-?[0-9]{1,20}")
_SUMMARY = reprlib.Repr()
_SUMMARY.maxlevel, _SUMMARY.maxdict, _SUMMARY.maxlist = 12, 50, 50
_SUMMARY.maxstring, _SUMMARY.maxother = 2000, 200


class PayloadError(ValueError):
    """A page (not an item) is unusable: its items cannot be read at all."""


@dataclass(frozen=True, slots=True)
class ImageMeta:
    """The CDN metadata of an image message. The files are AES-encrypted on WeChat's CDN, so
    these are references for downloadImage, not URLs a browser can load."""

    thumb_url: str = ""
    thumb_aes_key: str = ""
    thumb_width: int | None = None
    thumb_height: int | None = None
    thumb_length: int | None = None
    mid_url: str = ""
    big_url: str = ""
    length: int | None = None
    hd_length: int | None = None
    md5: str = ""
    aes_key: str = ""

    def to_dict(self) -> dict[str, Any]:
        # Flat fields of str and int: asdict()'s recursive deep copy cost ~6 µs an image.
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageMeta:
        known = cls.__dataclass_fields__.keys()
        return cls(**{key: value for key, value in data.items() if key in known})

    @property
    def aspect_ratio(self) -> float:
        """width / height, 1 when unknown: enough to reserve the card's space before loading."""
        if self.thumb_width and self.thumb_height:
            return self.thumb_width / self.thumb_height
        return 1.0


@dataclass(frozen=True, slots=True)
class Letter:
    """One upstream private letter, ready to become an inbox.Message row."""

    new_msg_id: int
    msg_session_id: str
    msg_type: int
    is_sender: bool
    created_at: datetime
    raw: Any
    msg_id: int | None = None
    msg_seq: int | None = None
    seq: int | None = None
    from_username: str = ""
    to_username: str = ""
    content: str = ""
    msg_source: str = ""
    ext_info: str = ""
    sub_type: int | None = None
    sync_key_type: int | None = None
    item_type: int | None = None
    upstream_status: int | None = None
    img_status: int | None = None
    image: ImageMeta | None = None
    title: str = ""
    app_type: int | None = None
    card: ShareCard | None = None
    parse_error: str = ""

    @property
    def image_meta(self) -> dict[str, Any] | None:
        """What Message.image_meta stores: an image's CDN metadata, or an app message's share
        card under "card" (inbox.share_cards; Message.image reads no image data from it)."""
        if self.image:
            return self.image.to_dict()
        if self.card:
            return {"card": self.card.to_dict()}
        return None

    @property
    def peer_username(self) -> str:
        return self.to_username if self.is_sender else self.from_username

    @property
    def my_username(self) -> str:
        return self.from_username if self.is_sender else self.to_username


@dataclass(frozen=True, slots=True)
class Quarantined:
    """An item that cannot be stored as a letter, kept raw with the reason."""

    raw: Any
    error: str
    fingerprint: str


@dataclass(slots=True)
class SyncPage:
    letters: list[Letter] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    key_buff: str = ""

    @property
    def item_count(self) -> int:
        return len(self.letters) + len(self.quarantined)


def clean_text(value: str) -> str:
    """Remove what a UTF-8 database column cannot hold: NUL bytes and unpaired surrogates."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def clean_json(value: Any) -> Any:
    """`value` with every string (keys included) passed through clean_text."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(key)): clean_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [clean_json(item) for item in value]
    return value


def fingerprint(raw: Any) -> str:
    canonical = json.dumps(raw, sort_keys=True, ensure_ascii=True, default=repr)
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_sync_page(data: Any, *, received_at: datetime | None = None) -> SyncPage:
    """The `data` of a syncPrivateLetterMsg response → letters, quarantined items and the next
    cursor. Raises PayloadError only when the page as a whole is unusable."""
    if not isinstance(data, dict):
        raise PayloadError(f"sync data is {type(data).__name__}, not an object")
    items = data.get("list")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise PayloadError(f"sync data.list is {type(items).__name__}, not a list")
    key_buff = data.get("keyBuff")
    if key_buff is None:
        key_buff = ""
    if not isinstance(key_buff, str):
        raise PayloadError(f"sync data.keyBuff is {type(key_buff).__name__}, not a string")
    if items and not key_buff:
        # Storing the page without a cursor to advance to would re-read it forever.
        raise PayloadError("sync data has items but no keyBuff")

    received_at = received_at or datetime.now(UTC)
    page = SyncPage(key_buff=clean_text(key_buff))
    for item in items:
        try:
            record = parse_item(item, received_at=received_at)
        except Exception as exc:  # one item must never stop the page
            record = _unparseable(item, exc)
        if isinstance(record, Letter):
            page.letters.append(record)
        else:
            page.quarantined.append(record)
    return page


def parse_item(item: Any, *, received_at: datetime | None = None) -> Letter | Quarantined:
    """One element of data.list → a Letter, or a Quarantined record saying why not."""
    raw = clean_json(item)
    if not isinstance(raw, dict):
        return _quarantine(raw, f"item is {type(raw).__name__}, not an object")
    content = raw.get("content")
    if not isinstance(content, dict):
        return _quarantine(raw, "item has no content object")
    msg = content.get("msg")
    if not isinstance(msg, dict):
        return _quarantine(raw, "item has no content.msg object")

    new_msg_id = msg.get("NewMsgId")
    if isinstance(new_msg_id, str) and _DIGITS.fullmatch(new_msg_id):
        new_msg_id = int(new_msg_id)
    if type(new_msg_id) is not int or not 0 < new_msg_id <= UINT64_MAX:
        return _quarantine(raw, f"NewMsgId {new_msg_id!r} is not an unsigned 64-bit integer")
    session_id = content.get("msgSessionId")
    if not isinstance(session_id, str) or not session_id.strip():
        return _quarantine(raw, "item has no msgSessionId")
    if len(session_id) > ID_LENGTH:
        return _quarantine(raw, f"msgSessionId is longer than {ID_LENGTH} characters")

    errors: list[str] = []
    msg_type = _int(msg.get("MsgType"), "MsgType", errors, INT32_MIN, INT32_MAX)
    created_at = _create_time(msg.get("CreateTime"), errors) or received_at or datetime.now(UTC)
    text = _wrapped_string(msg.get("Content"), "Content", errors)

    image = card = None
    app_type = None
    if msg_type == IMAGE:
        try:
            image = parse_image_xml(text)
        except ValueError as exc:
            errors.append(f"image XML: {exc}")
    elif msg_type == APP and text:
        try:
            card, app_type, notes = parse_app_xml(text)
        except ValueError as exc:
            errors.append(f"app message XML: {exc}")
        else:
            errors.extend(f"app message XML: {note}" for note in notes)

    return Letter(
        new_msg_id=new_msg_id,
        msg_session_id=session_id,
        msg_type=msg_type if msg_type is not None else 0,
        is_sender=_flag(content.get("isSender"), "isSender", errors),
        created_at=created_at,
        raw=raw,
        msg_id=_int(msg.get("MsgId"), "MsgId", errors),
        msg_seq=_int(msg.get("MsgSeq"), "MsgSeq", errors),
        seq=_int(content.get("seq"), "seq", errors),
        from_username=_limit(
            _wrapped_string(msg.get("FromUserName"), "FromUserName", errors),
            ID_LENGTH,
            "FromUserName",
            errors,
        ),
        to_username=_limit(
            _wrapped_string(msg.get("ToUserName"), "ToUserName", errors),
            ID_LENGTH,
            "ToUserName",
            errors,
        ),
        content=text,
        msg_source=_string(msg.get("MsgSource"), "MsgSource", errors),
        ext_info=_limit(
            _string(content.get("extinfo"), "extinfo", errors), EXT_INFO_LENGTH, "extinfo", errors
        ),
        sub_type=_int(raw.get("subType"), "subType", errors, INT32_MIN, INT32_MAX),
        sync_key_type=_int(raw.get("syncKeyType"), "syncKeyType", errors, INT32_MIN, INT32_MAX),
        item_type=_int(raw.get("itemType"), "itemType", errors, INT32_MIN, INT32_MAX),
        upstream_status=_int(msg.get("Status"), "Status", errors, INT32_MIN, INT32_MAX),
        img_status=_int(msg.get("ImgStatus"), "ImgStatus", errors, INT32_MIN, INT32_MAX),
        image=image,
        title=card.title[:TITLE_LENGTH] if card else "",
        app_type=app_type,
        card=card,
        parse_error="; ".join(errors),
    )


def parse_image_xml(xml: str) -> ImageMeta:
    """MsgType 3 content → ImageMeta. Raises ValueError for XML that is too large, malformed,
    declares a DTD (entity bombs, external entities) or has no <img>."""
    img = _parse_xml(xml).find("img")
    if img is None:
        raise ValueError("no <img> element")
    attrs = img.attrib

    def number(name: str) -> int | None:
        value = attrs.get(name, "").strip()
        return int(value) if _DIGITS.fullmatch(value) and len(value) < 19 else None

    return ImageMeta(
        thumb_url=attrs.get("cdnthumburl", ""),
        thumb_aes_key=attrs.get("cdnthumbaeskey", ""),
        thumb_width=number("cdnthumbwidth"),
        thumb_height=number("cdnthumbheight"),
        thumb_length=number("cdnthumblength"),
        mid_url=attrs.get("cdnmidimgurl", ""),
        big_url=attrs.get("cdnbigimgurl", ""),
        length=number("length"),
        hd_length=number("hdlength"),
        md5=attrs.get("md5", ""),
        aes_key=attrs.get("aeskey", ""),
    )


def parse_app_xml(xml: str) -> tuple[ShareCard, int | None, list[str]]:
    """MsgType 49 content → (its share card, the appmsg type, notes on values of the wrong
    type; see inbox.share_cards). Raises ValueError like parse_image_xml."""
    appmsg = _parse_xml(xml).find("appmsg")
    if appmsg is None:
        raise ValueError("no <appmsg> element")
    return read_share_card(appmsg)


def _parse_xml(xml: str):
    if len(xml) > MAX_XML_BYTES:
        raise ValueError(f"XML is larger than {MAX_XML_BYTES} bytes")
    try:
        # forbid_dtd refuses any DOCTYPE before an entity is expanded or fetched: both the
        # billion-laughs bomb and external entities stop at the first line.
        return parse_xml_safely(xml, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise ValueError(f"refused ({type(exc).__name__})") from exc
    except ParseError as exc:
        raise ValueError(f"malformed ({exc})") from exc


def _quarantine(raw: Any, error: str) -> Quarantined:
    return Quarantined(raw=raw, error=error, fingerprint=fingerprint(raw))


def _unparseable(item: Any, exc: Exception) -> Quarantined:
    """An item the parser itself failed on (nested deeper than Python recurses, or a case no
    rule above foresaw): kept as a bounded summary, since the item may not even serialise."""
    summary = clean_text(_SUMMARY.repr(item))
    return Quarantined(
        raw=summary,
        error=f"item could not be parsed ({type(exc).__name__}: {str(exc)[:200]})",
        fingerprint=hashlib.sha256(summary.encode()).hexdigest(),
    )


def _int(
    value: Any, name: str, errors: list[str], low: int = INT64_MIN, high: int = INT64_MAX
) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        value = int(value)
    if type(value) is not int or not low <= value <= high:
        errors.append(f"{name} {str(value)[:40]!r} is not an integer in range")
        return None
    return value


def _flag(value: Any, name: str, errors: list[str]) -> bool:
    if value in (0, 1):  # also True and False
        return bool(value)
    if value is not None:
        errors.append(f"{name} {str(value)[:40]!r} is not 0 or 1")
    return False


def _string(value: Any, name: str, errors: list[str]) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    errors.append(f"{name} is {type(value).__name__}, not a string")
    return ""


def _wrapped_string(value: Any, name: str, errors: list[str]) -> str:
    """WeChat wraps some strings as {"string": "..."}; accept the bare string too."""
    if isinstance(value, dict):
        return _string(value.get("string"), name, errors)
    return _string(value, name, errors)


def _limit(value: str, length: int, name: str, errors: list[str]) -> str:
    if len(value) > length:
        errors.append(f"{name} cut to {length} characters")
        return value[:length]
    return value


def _create_time(value: Any, errors: list[str]) -> datetime | None:
    seconds = _int(value, "CreateTime", errors)
    if seconds is None:
        if value is None:
            errors.append("CreateTime missing")
        return None
    if not MIN_CREATE_TIME <= seconds <= MAX_CREATE_TIME:
        errors.append(f"CreateTime {seconds} is out of range")
        return None
    return datetime.fromtimestamp(seconds, tz=UTC)
