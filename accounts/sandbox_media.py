"""What the sandbox upstream (accounts.sandbox) serves besides JSON, and the XML that points at
it: generated pictures (image letters' files at every downloadImage size, contactList's avatars,
the covers of Channels shares) and the shares' XML, shaped like WeChat's. Everything here is
made from a seed, so the same letter always shows the same picture, and nothing is stored."""

from __future__ import annotations

import functools
import hashlib
import re
import struct
import zlib
from typing import Any
from xml.sax.saxutils import escape


def finder_name(seed: str) -> str:
    return f"v2_0600002310{hashlib.sha256(seed.encode()).hexdigest()[:66]}@finder"


# A shared Channels video (appmsg type 51) and live (type 63), shaped like what WeChat sends: the
# appmsg title is only an "upgrade WeChat" notice, the share itself is in <finderFeed> or
# <finderLive>, its pictures on WeChat's CDN.
FINDER_UPGRADE_TITLE = "当前微信版本不支持展示该内容，请升级至最新版本。"
FINDER_FEED_XML = (
    '<?xml version="1.0"?>\n<msg>\n\t<appmsg appid="" sdkver="0">\n'
    f"\t\t<title>{FINDER_UPGRADE_TITLE}</title>\n\t\t<des />\n\t\t<action />\n"
    "\t\t<type>51</type>\n\t\t<showtype>0</showtype>\n\t\t<content />\n"
    "\t\t<url>https://support.weixin.qq.com/update/</url>\n\t\t<appattach>\n"
    "\t\t\t<totallen>0</totallen>\n\t\t\t<attachid />\n\t\t\t<fileext />\n"
    "\t\t</appattach>\n\t\t<extinfo />\n\t\t<finderFeed>\n"
    "\t\t\t<objectId>{object_id}</objectId>\n\t\t\t<feedType>4</feedType>\n"
    "\t\t\t<nickname>{nickname}</nickname>\n\t\t\t<avatar>{avatar}</avatar>\n"
    "\t\t\t<desc>{desc}</desc>\n\t\t\t<mediaCount>1</mediaCount>\n"
    "\t\t\t<objectNonceId>{object_id}_0_0_0_0_0</objectNonceId>\n\t\t\t<liveId>0</liveId>\n"
    "\t\t\t<username>{username}</username>\n\t\t\t<mediaList>\n\t\t\t\t<media>\n"
    "\t\t\t\t\t<mediaType>4</mediaType>\n"
    "\t\t\t\t\t<url>{cdn}/251/20302/stodownload?encfilekey={key}&amp;bizid=1023</url>\n"
    "\t\t\t\t\t<thumbUrl>{cover}</thumbUrl>\n\t\t\t\t\t<width>{width}</width>\n"
    "\t\t\t\t\t<height>{height}</height>\n\t\t\t\t\t<coverUrl>{cover}</coverUrl>\n"
    "\t\t\t\t\t<videoPlayDuration>{duration}</videoPlayDuration>\n"
    "\t\t\t\t</media>\n\t\t\t</mediaList>\n\t\t</finderFeed>\n\t</appmsg>\n"
    "\t<fromusername>{username}</fromusername>\n\t<scene>0</scene>\n"
    "\t<appinfo>\n\t\t<version>1</version>\n\t\t<appname></appname>\n\t</appinfo>\n</msg>\n"
)
FINDER_LIVE_XML = (
    '<msg>\n\t<appmsg appid="" sdkver="">\n\t\t<title></title>\n\t\t<des></des>\n'
    "\t\t<action>view</action>\n\t\t<type>63</type>\n\t\t<url></url>\n"
    "\t\t<finderLive>\n\t\t\t<finderLiveID>{live_id}</finderLiveID>\n"
    "\t\t\t<finderUsername>{username}</finderUsername>\n"
    "\t\t\t<finderObjectID>{object_id}</finderObjectID>\n"
    "\t\t\t<nickname>{nickname}</nickname>\n\t\t\t<desc>{desc}</desc>\n"
    "\t\t\t<headUrl>{avatar}</headUrl>\n\t\t\t<liveStatus>{status}</liveStatus>\n"
    "\t\t\t<media>\n\t\t\t\t<thumbUrl>{cover}</thumbUrl>\n"
    "\t\t\t\t<videoPlayDuration>0</videoPlayDuration>\n\t\t\t\t<url></url>\n"
    "\t\t\t\t<coverUrl>{cover}</coverUrl>\n\t\t\t\t<height>1000</height>\n"
    "\t\t\t\t<width>750</width>\n\t\t\t\t<mediaType>9</mediaType>\n\t\t\t</media>\n"
    "\t\t</finderLive>\n\t</appmsg>\n\t<appinfo>\n\t\t<version>1</version>\n"
    "\t\t<appname>Window wechat</appname>\n\t</appinfo>\n</msg>"
)
# Where WeChat's XML puts the shares' pictures: the Channels CDN. A running sandbox cannot
# serve that host, so the shares it writes itself (the script, the history, the running ones)
# name a cover it serves at `<base_url>/_sandbox/covers/` instead; the inbox downloads covers
# from its account's own upstream origin as from WeChat's CDN (share_cards.is_trusted_picture),
# so the demo and the tests show real covers through the same path as production. Shares made
# without a base_url (parser tests) keep the CDN's shape.
FINDER_CDN = "https://finder.video.qq.com"
# The longest side of a sandbox cover: enough for a card, cheap to make.
COVER_SIDE = 320


def finder_cover_url(seed: str, base_url: str = "", width: int = 750, height: int = 1000) -> str:
    """A cover picture URL, the same for a seed: served by the sandbox at `base_url`, in the
    shape of a `width` × `height` cover, or without one on the Channels CDN, shaped like
    WeChat's."""
    key = hashlib.sha256(f"cover:{seed}".encode()).hexdigest()
    if base_url:
        scale = COVER_SIDE / max(width, height, 1)
        size = f"{max(1, round(width * scale))}x{max(1, round(height * scale))}"
        return f"{base_url}/_sandbox/covers/{key[:32]}-{size}.png"
    return (
        f"{FINDER_CDN}/251/20304/stodownload?encfilekey={key[:48]}&bizid=1023&dotrans=0&hy=SH"
        f"&idx=1&m={key[48:]}&token={key[:32]}"
    )


@functools.lru_cache(maxsize=64)
def cover_file(name: str) -> bytes | None:
    """The PNG at /_sandbox/covers/<name>.png (`<key>-<w>x<h>`, see finder_cover_url), or None
    for a name the sandbox never wrote."""
    match = re.fullmatch(r"([0-9a-f]{32})-(\d{1,3})x(\d{1,3})", name)
    if match is None or max(int(match.group(2)), int(match.group(3))) > COVER_SIDE:
        return None
    return png_bytes(int(match.group(2)), int(match.group(3)), f"cover:{match.group(1)}")


def finder_feed_xml(
    seed: str,
    *,
    desc: str,
    nickname: str,
    duration: int = 33,
    width: int = 1080,
    height: int = 1920,
    base_url: str = "",
) -> str:
    """The XML of a shared Channels video by `nickname`, the same for a seed; its cover served
    by the sandbox at `base_url` when one is given (finder_cover_url)."""
    digest = hashlib.sha256(f"feed:{seed}".encode()).hexdigest()
    return FINDER_FEED_XML.format(
        object_id=int(digest[:16], 16),
        nickname=escape(nickname),
        avatar=f"https://wx.qlogo.cn/finderhead/ver_1/{digest[16:48]}/0",
        desc=escape(desc),
        username=finder_name(f"author:{nickname}"),
        cdn=FINDER_CDN,
        key=digest[:40],
        cover=escape(finder_cover_url(seed, base_url, width, height)),
        width=width,
        height=height,
        duration=duration,
    )


def finder_live_xml(
    seed: str, *, desc: str, nickname: str, status: int = 1, base_url: str = ""
) -> str:
    """The XML of a shared Channels live by `nickname` (liveStatus 1: live now, 2: ended); its
    cover served by the sandbox at `base_url` when one is given."""
    digest = hashlib.sha256(f"live:{seed}".encode()).hexdigest()
    return FINDER_LIVE_XML.format(
        live_id=int(digest[:15], 16),
        username=finder_name(f"author:{nickname}"),
        object_id=int(digest[15:31], 16),
        nickname=escape(nickname),
        desc=escape(desc),
        avatar=f"https://wx.qlogo.cn/finderhead/ver_1/{digest[31:63]}/132",
        status=status,
        cover=escape(finder_cover_url(f"live:{seed}", base_url)),
    )


# The longest side of the picture downloadImage serves for each type: the thumbnail as the
# letter's XML describes it (within 240), the normal size and HD larger, so a lightbox shows more
# than the card did.
PICTURE_SIDES = {1: 720, 2: 480, 3: 240}


def picture_size(xml: str, image_type: Any) -> tuple[int, int]:
    """The size of the sandbox's picture for an image letter's XML and a downloadImage type: the
    thumbnail's shape (cdnthumbwidth × cdnthumbheight, square when the XML has none)."""
    found = {
        name: int(match.group(1))
        for name in ("cdnthumbwidth", "cdnthumbheight")
        if (match := re.search(rf'{name}="(\d{{1,5}})"', xml)) and int(match.group(1)) > 0
    }
    width, height = found.get("cdnthumbwidth", 120), found.get("cdnthumbheight", 120)
    side = PICTURE_SIDES.get(image_type, 480)
    if image_type == 3 and max(width, height) <= side:
        return width, height
    scale = side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


@functools.lru_cache(maxsize=64)
def picture_file(name: str) -> bytes:
    """The PNG at /_sandbox/files/<name>.png: `<md5>-<type>-<w>x<h>` (coloured by the md5 alone,
    so every size of one letter's picture looks alike), or the older `<md5>-<type>`."""
    match = re.fullmatch(r"([0-9a-f]{32})-\d+-(\d{1,4})x(\d{1,4})", name)
    if match:
        return png_bytes(int(match.group(2)), int(match.group(3)), match.group(1))
    width, height = (480, 360) if name.endswith("-1") else (240, 180)
    return png_bytes(width, height, name)


def avatar_url(base_url: str, username: str) -> str:
    """Where contactList says a peer's picture is: a PNG made by GET /_sandbox/avatars."""
    return f"{base_url}/_sandbox/avatars/{hashlib.sha256(username.encode()).hexdigest()[:32]}.png"


def png_bytes(width: int, height: int, seed: str) -> bytes:
    """A small gradient PNG, coloured by `seed`: what the demo shows for an image message."""
    digest = hashlib.sha256(seed.encode()).digest()
    (r0, g0, b0), (r1, g1, b1) = digest[0:3], digest[3:6]
    rows = []
    for y in range(height):
        t = y / max(height - 1, 1)
        row = bytearray([0])  # filter type None
        for x in range(width):
            s = (x / max(width - 1, 1) + t) / 2
            row += bytes(
                (int(r0 + (r1 - r0) * s), int(g0 + (g1 - g0) * s), int(b0 + (b1 - b0) * s))
            )
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 6))
        + chunk(b"IEND", b"")
    )
