"""Share cards: app messages (MsgType 49) that share a Channels video or live, a mini program or
a link are read at ingest into a card (inbox.share_cards, through inbox.payloads) and shown in
the thread as one (inbox.rendering.render_share_card); hostile or broken XML leaves the letter
stored with a plain card and a noted parse error, never its XML on the page; and
`reparse_app_messages` fills in the cards of letters stored before."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from html import escape
from io import StringIO
from xml.sax.saxutils import escape as xml_escape

import pytest
import requests
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.sandbox import PEERS, SandboxAccount, history_item, running_share
from accounts.sandbox_media import FINDER_UPGRADE_TITLE, finder_feed_xml, finder_live_xml
from inbox import rendering
from inbox.card_backfill import reparse_app_messages, reparsed_values
from inbox.models import Message, Session
from inbox.payloads import Letter, parse_app_xml, parse_item
from inbox.pictures import services as picture_services
from inbox.pictures import storage as picture_storage
from inbox.pictures import tasks
from inbox.pictures.models import MessagePicture, StoredPicture
from inbox.pictures.storage import sniff as storage_sniff
from inbox.share_cards import (
    APP,
    LINK,
    LIVE,
    MINI_PROGRAM,
    VIDEO,
    ShareCard,
    is_trusted_picture,
)
from inbox.sync import sync_account

# A Channels video share as WeChat sends it (from a public SDK's capture of a real message): the
# appmsg title is only an "upgrade" notice, and videoPlayDuration really reads "10>>".
REAL_FEED_XML = (
    '<?xml version="1.0"?>\n<msg>\n\t<appmsg appid="" sdkver="0">\n'
    "\t\t<title>当前微信版本不支持展示该内容，请升级至最新版本。</title>\n\t\t<des />\n"
    "\t\t<action />\n\t\t<type>51</type>\n\t\t<showtype>0</showtype>\n"
    "\t\t<soundtype>0</soundtype>\n"
    "\t\t<content />\n\t\t<contentattr>0</contentattr>\n"
    "\t\t<url>https://support.weixin.qq.com/update/</url>\n\t\t<appattach>\n"
    "\t\t\t<totallen>0</totallen>\n\t\t\t<attachid />\n\t\t\t<emoticonmd5 />\n\t\t\t<fileext />\n"
    "\t\t\t<aeskey />\n\t\t</appattach>\n\t\t<extinfo />\n\t\t<sourceusername />\n"
    "\t\t<sourcedisplayname />\n\t\t<thumburl />\n\t\t<md5 />\n\t\t<statextstr />\n"
    "\t\t<finderFeed>\n\t\t\t<objectId>14264358459626428566</objectId>\n"
    "\t\t\t<feedType>4</feedType>\n\t\t\t<nickname>国风锦鲤</nickname>\n"
    "\t\t\t<avatar>https://wx.qlogo.cn/finderhead/ver_1/x2LxetmLmgoo9jp69R3wcrtZ0LBL/0</avatar>\n"
    "\t\t\t<desc>还招人么？我不要工资#逆水寒cos</desc>\n\t\t\t<mediaCount>1</mediaCount>\n"
    "\t\t\t<objectNonceId>8046877030770906689_0_0_0_0_0</objectNonceId>\n"
    "\t\t\t<liveId>0</liveId>\n"
    "\t\t\t<username>v2_060000231003b20faec8cae08b19c7d2c702e834b077fb74f482543ff67f0cc66363057a"
    "5443@finder</username>\n\t\t\t<webUrl />\n\t\t\t<authIconType>0</authIconType>\n"
    "\t\t\t<authIconUrl />\n\t\t\t<bizNickname />\n\t\t\t<bizAvatar />\n\t\t\t<bizUsernameV2 />\n"
    "\t\t\t<mediaList>\n\t\t\t\t<media>\n\t\t\t\t\t<mediaType>4</mediaType>\n"
    "\t\t\t\t\t<url>http://wxapp.tc.qq.com/251/20302/stodownload?encfilekey=Cvvj5Ix3eez3&amp;"
    "a=1&amp;bizid=1023</url>\n"
    "\t\t\t\t\t<thumbUrl>http://wxapp.tc.qq.com/251/20304/stodownload?encfilekey=oibeqyX228&amp;"
    "bizid=1023&amp;token=oA9SZ4icv8&amp;ctsc=2-20</thumbUrl>\n"
    "\t\t\t\t\t<width>1080</width>\n\t\t\t\t\t<height>1920</height>\n"
    "\t\t\t\t\t<coverUrl>http://wxapp.tc.qq.com/251/20304/stodownload?encfilekey=oibeqyX228"
    "</coverUrl>\n"
    "\t\t\t\t\t<videoPlayDuration>10&gt;&gt;</videoPlayDuration>\n\t\t\t\t</media>\n"
    "\t\t\t</mediaList>\n\t\t</finderFeed>\n\t</appmsg>\n"
    "\t<fromusername>wxid_phyyedw9xap22</fromusername>\n\t<scene>0</scene>\n"
    "\t<appinfo>\n\t\t<version>1</version>\n\t\t<appname></appname>\n\t</appinfo>\n"
    "\t<commenturl></commenturl>\n</msg>\n"
)
# A Channels live share as a Windows WeChat client writes it (type 63, <finderLive>).
REAL_LIVE_XML = (
    "<msg>\n    <fromusername>wxid_x</fromusername>\n    <scene>0</scene>\n"
    '    <appmsg appid="" sdkver="">\n        <title></title>\n        <des></des>\n'
    "        <action>view</action>\n        <type>63</type>\n        <url></url>\n"
    "        <appattach>\n            <totallen>0</totallen>\n        </appattach>\n"
    "        <weappinfo>\n            <pagepath></pagepath>\n            <username></username>\n"
    "        </weappinfo>\n        <websearch />\n        <finderLive>\n"
    "            <finderLiveID>2078689339384988848</finderLiveID>\n"
    "            <finderUsername>v2_060000231003b20faec8c6e08f1ccad5ca04e930b0772949079bb0975410"
    "cd8795a30ecaf182@finder</finderUsername>\n"
    "            <finderObjectID>14404630107220351100</finderObjectID>\n"
    "            <nickname>灵绣三都</nickname>\n            <desc>24小时新闻直播</desc>\n"
    "            <finderNonceID>832713670845449450_0_142_0_0</finderNonceID>\n"
    "            <headUrl>https://wx.qlogo.cn/finderhead/ver_1/3AiczcfQVe2B4p2/132</headUrl>\n"
    "            <liveStatus>1</liveStatus>\n            <media>\n"
    "                <thumbUrl>https://finder.video.qq.com/251/20304/stodownload?encfilekey=rjD5"
    "&amp;bizid=1023&amp;picformat=100</thumbUrl>\n"
    "                <videoPlayDuration>0</videoPlayDuration>\n                <url></url>\n"
    "                <coverUrl>https://finder.video.qq.com/251/20304/stodownload?encfilekey=rjD5"
    "</coverUrl>\n                <height>1000</height>\n                <width>750</width>\n"
    "                <mediaType>9</mediaType>\n            </media>\n        </finderLive>\n"
    "    </appmsg>\n    <appinfo>\n        <version>1</version>\n"
    "        <appname>Window wechat</appname>\n    </appinfo>\n</msg>"
)
# A mini program share carries empty <finderFeed>/<finderLive> elements: not a Channels share.
MINI_PROGRAM_XML = (
    '<msg><appmsg appid="" sdkver="0"><title>美团外卖，送啥都快</title>'
    "<des>你想吃的，你想喝的：都在美团外卖！</des><type>33</type>"
    "<url>https://mp.weixin.qq.com/mp/waerrpage?appid=wx2c348cf579062e56&amp;type=upgrade</url>"
    "<sourcedisplayname>美团外卖丨外卖美食奶茶咖啡水果</sourcedisplayname>"
    "<finderFeed><objectId>0</objectId><objectNonceId>0</objectNonceId><feedType>-1</feedType>"
    "<nickname></nickname><username></username><avatar></avatar><desc></desc>"
    "<mediaCount>0</mediaCount><localId>0</localId><mediaList /></finderFeed>"
    "<finderLive><finderLiveID>0</finderLiveID><finderUsername></finderUsername>"
    "<finderObjectID>0</finderObjectID><nickname></nickname><desc></desc>"
    "<liveStatus>-1</liveStatus><media><thumbUrl></thumbUrl><coverUrl></coverUrl>"
    "<height>0</height><width>0</width><mediaType>-1</mediaType></media></finderLive>"
    "</appmsg></msg>"
)
LINK_XML = (
    "<msg><appmsg><title>618 活动说明</title><des>点击查看\n活动规则</des><type>5</type>"
    "<url>https://shop.example/618?a=1&amp;b=2</url>"
    "<thumburl>https://tracker.example/pixel.png?who=you</thumburl></appmsg></msg>"
)
BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<msg><appmsg><title>&lol9;</title><type>51</type>
<finderFeed><nickname>&lol9;</nickname></finderFeed></appmsg></msg>"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE msg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<msg><appmsg><title>&xxe;</title><type>51</type>
<finderFeed><nickname>&xxe;</nickname><desc>&xxe;</desc></finderFeed></appmsg></msg>"""
HUGE = (
    "<msg><appmsg><type>51</type><finderFeed><desc>"
    + "长" * 300_000
    + "</desc></finderFeed></appmsg></msg>"
)
HOSTILE = {
    "billion laughs": (BILLION_LAUGHS, "refused"),
    "external entity": (EXTERNAL_ENTITY, "refused"),
    "huge": (HUGE, "XML is larger than"),
    "malformed": ("<msg><appmsg><title>半截<type>51</type></appmsg>", "malformed"),
    "truncated": (REAL_FEED_XML[: len(REAL_FEED_XML) // 2], "malformed"),
    "not XML": ("shared a video <script>alert(1)</script>", "malformed"),
    "no appmsg": ("<msg><img cdnthumburl='x' /></msg>", "no <appmsg>"),
}


def app_item(make_item, xml: str) -> dict:
    return make_item(content__msg__MsgType=49, content__msg__Content={"string": xml})


def card_of(xml: str) -> ShareCard:
    card, _app_type, _notes = parse_app_xml(xml)
    return card


# --- reading the XML --------------------------------------------------------------------------


def test_a_real_channels_video_share_becomes_a_video_card(make_item):
    letter = parse_item(app_item(make_item, REAL_FEED_XML))

    assert isinstance(letter, Letter)
    assert letter.parse_error == ""
    assert letter.app_type == 51
    assert letter.title == "还招人么？我不要工资#逆水寒cos"  # not WeChat's "please upgrade"
    card = letter.card
    assert card.kind == VIDEO
    assert card.author == "国风锦鲤"
    assert card.author_username.startswith("v2_060000231003b20faec8cae08b19")
    assert card.feed_id == "14264358459626428566"  # above 2**63: kept as text
    assert card.duration == 10
    assert (card.cover_width, card.cover_height) == (1080, 1920)
    # The thumbnail, entities decoded, on https (WeChat's CDN serves both).
    assert card.cover_url == (
        "https://wxapp.tc.qq.com/251/20304/stodownload?encfilekey=oibeqyX228&bizid=1023"
        "&token=oA9SZ4icv8&ctsc=2-20"
    )
    assert card.avatar_url.startswith("https://wx.qlogo.cn/finderhead/")
    # On WeChat's CDNs: the server may download them (the browser never loads them).
    assert is_trusted_picture(card.cover_url) and is_trusted_picture(card.avatar_url)
    assert letter.image_meta == {"card": card.to_dict()}
    assert "<" not in repr(card)  # nothing of the XML itself is kept


def test_a_real_channels_live_share_becomes_a_live_card():
    card, app_type, notes = parse_app_xml(REAL_LIVE_XML)

    assert (app_type, notes) == (63, [])
    assert card.kind == LIVE
    assert (card.title, card.author) == ("24小时新闻直播", "灵绣三都")
    assert card.live_status == 1
    assert card.feed_id == "2078689339384988848"
    assert card.cover_url.startswith("https://finder.video.qq.com/251/20304/stodownload?")
    assert "&bizid=1023&picformat=100" in card.cover_url
    assert (card.cover_width, card.cover_height) == (750, 1000)
    assert card.author_username.endswith("@finder")


def test_a_live_cover_written_straight_under_finder_live_is_found():
    xml = (
        "<msg><appmsg><type>63</type><finderLive><finderLiveID>204290593182</finderLiveID>"
        "<nickname>新华网健康</nickname>"
        "<coverUrl>https://wxapp.tc.qq.com/251/20304/stodownload?encfilekey=y</coverUrl>"
        "<desc>庆祝大会</desc><liveStatus>2</liveStatus></finderLive></appmsg></msg>"
    )

    card = card_of(xml)

    assert (card.kind, card.title, card.live_status) == (LIVE, "庆祝大会", 2)
    assert card.cover_url == "https://wxapp.tc.qq.com/251/20304/stodownload?encfilekey=y"


def test_empty_channels_elements_in_a_mini_program_share_do_not_make_it_a_video():
    card, app_type, _ = parse_app_xml(MINI_PROGRAM_XML)

    assert (app_type, card.kind) == (33, MINI_PROGRAM)
    assert card.title == "美团外卖，送啥都快"
    assert card.author == "美团外卖丨外卖美食奶茶咖啡水果"
    assert card.feed_id == "" and card.live_status is None


def test_a_link_share_keeps_its_url_and_a_foreign_thumbnail_is_never_fetched():
    card, app_type, _ = parse_app_xml(LINK_XML)

    assert (app_type, card.kind) == (5, LINK)
    assert card.url == "https://shop.example/618?a=1&b=2"
    assert card.description == "点击查看\n活动规则"
    assert card.cover_url == "https://tracker.example/pixel.png?who=you"
    assert not is_trusted_picture(card.cover_url)


def test_a_video_share_without_its_finder_feed_falls_back_to_the_appmsg_title():
    card, app_type, _ = parse_app_xml(
        "<msg><appmsg><title> 春季新品 </title><type>51</type></appmsg></msg>"
    )

    assert (card.kind, card.title, app_type) == (VIDEO, "春季新品", 51)


def test_an_app_message_with_nothing_known_is_a_plain_app_card():
    card, app_type, notes = parse_app_xml("<msg><appmsg><title>转账</title></appmsg></msg>")

    assert (card.kind, card.title, app_type, notes) == (APP, "转账", None, [])


def test_text_is_cleaned_and_bounded():
    desc = "第一行\u202e反转\u200b\x7f\n\t第二行   " + "长" * 400
    xml = (
        "<msg><appmsg><type>51</type><finderFeed>"
        f"<nickname>{xml_escape('名' * 150)}</nickname><desc>{xml_escape(desc)}</desc>"
        "</finderFeed></appmsg></msg>"
    )

    card = card_of(xml)

    assert card.title.startswith("第一行反转 第二行 长")
    assert len(card.title) == 200 and card.title.endswith("…")
    assert len(card.author) == 100 and card.author.endswith("…")
    assert not re.search("[\u202e\u200b\x7f\n\t]", card.title)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:image/png;base64,AAAA",
        "//finder.video.qq.com/a.png",
        "https://finder.video.qq.com/a b.png",
        "https://[::1/a.png",
        "https://finder.video.qq.com/" + "a" * 2000,
        "file:///etc/passwd",
    ],
)
def test_unusable_cover_urls_are_left_out(url):
    xml = (
        "<msg><appmsg><type>51</type><finderFeed><nickname>n</nickname><mediaList><media>"
        f"<thumbUrl>{xml_escape(url)}</thumbUrl></media></mediaList></finderFeed></appmsg></msg>"
    )

    assert card_of(xml).cover_url == ""


@pytest.mark.parametrize(
    ("url", "trusted"),
    [
        ("https://finder.video.qq.com/251/a", True),
        ("https://wx.qlogo.cn/finderhead/a/0", True),
        ("https://mmbiz.qpic.cn/a", True),
        ("https://qq.com.evil.example/a", False),
        ("https://evilqq.com/a", False),
        ("http://finder.video.qq.com/a", False),  # the parser upgrades these; stored ones stay
        ("", False),
    ],
)
def test_only_https_pictures_on_wechat_cdns_are_fetched(url, trusted):
    assert is_trusted_picture(url) is trusted


@pytest.mark.parametrize(
    ("url", "trusted"),
    [
        ("http://127.0.0.1:8765/_sandbox/covers/a.png", True),
        ("http://127.0.0.1:8766/_sandbox/covers/a.png", False),  # another port
        ("https://127.0.0.1:8765/_sandbox/covers/a.png", False),  # another scheme
        ("http://localhost:8765/a.png", False),
        ("http://127.0.0.1:99999/a.png", False),  # no port at all
        ("https://finder.video.qq.com/251/a", True),  # WeChat's CDNs still are
    ],
)
def test_pictures_at_the_accounts_own_upstream_origin_are_fetched(url, trusted):
    assert is_trusted_picture(url, "http://127.0.0.1:8765/finder/v2/api") is trusted


def test_numbers_of_the_wrong_type_are_noted_and_left_out(make_item):
    xml = (
        "<msg><appmsg><type>63</type><finderLive><nickname>主播</nickname>"
        "<liveStatus>yes</liveStatus><media><width>wide</width><height>-5</height>"
        "<thumbUrl>https://finder.video.qq.com/a</thumbUrl></media></finderLive></appmsg></msg>"
    )

    letter = parse_item(app_item(make_item, xml))

    assert letter.card.kind == LIVE and letter.card.author == "主播"
    assert letter.card.live_status is None and letter.card.cover_width is None
    assert "liveStatus 'yes'" in letter.parse_error and "width 'wide'" in letter.parse_error
    assert "height '-5'" in letter.parse_error


def test_an_appmsg_type_that_is_not_a_number_is_noted(make_item):
    letter = parse_item(
        app_item(make_item, "<msg><appmsg><title>t</title><type>video</type></appmsg></msg>")
    )

    assert (letter.app_type, letter.title, letter.card.kind) == (None, "t", APP)
    assert "type 'video' is not a number" in letter.parse_error


@pytest.mark.parametrize(("xml", "error"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_or_broken_xml_stores_the_letter_with_its_error_and_no_card(make_item, xml, error):
    started = time.perf_counter()
    letter = parse_item(app_item(make_item, xml))

    assert time.perf_counter() - started < 0.5
    assert isinstance(letter, Letter)
    assert letter.card is None and letter.image_meta is None
    assert letter.title == "" and letter.app_type is None
    assert f"app message XML: {error}" in letter.parse_error
    assert letter.content == xml  # nothing lost: the letter keeps what came
    assert "lollol" not in repr(letter.card) and "root:" not in letter.parse_error


def test_a_stored_card_reads_back_and_tolerates_values_of_the_wrong_type():
    card = card_of(REAL_LIVE_XML)

    assert ShareCard.from_dict(card.to_dict()) == card
    assert "description" not in card.to_dict()  # empty fields are not stored
    odd = ShareCard.from_dict({"kind": "<b>", "title": 5, "duration": "9", "live_status": True})
    assert odd == ShareCard(kind=APP)
    assert ShareCard.from_dict(["not", "a", "card"]) is None


def test_the_sandbox_shares_are_what_the_parser_reads():
    account = SandboxAccount(app_id="wx_cards", token="t", finder_username="v2_x@finder", wxid="w")
    account.history, account.history_sessions = 200, 10
    video = card_of(history_item(account, 17)["content"]["msg"]["Content"]["string"])
    live = card_of(history_item(account, 41)["content"]["msg"]["Content"]["string"])

    assert video.kind == VIDEO and video.title.startswith("新品上架")
    assert video.cover_url.startswith("https://finder.video.qq.com/251/20304/stodownload?")
    assert live.kind == LIVE and live.title == "周末福利直播"
    # A running sandbox's shares name covers it serves itself.
    served = card_of(
        history_item(account, 41, "http://127.0.0.1:9")["content"]["msg"]["Content"]["string"]
    )
    assert re.fullmatch(
        r"http://127\.0\.0\.1:9/_sandbox/covers/[0-9a-f]{32}-240x320\.png", served.cover_url
    )
    # Made the same on every call.
    assert history_item(account, 17) == history_item(account, 17)
    assert card_of(finder_feed_xml("a", desc="<b>&", nickname="x")).title == "<b>&"
    assert card_of(finder_live_xml("a", desc="d", nickname="n", status=2)).live_status == 2
    assert FINDER_UPGRADE_TITLE in finder_feed_xml("a", desc="d", nickname="n")
    # What the running sandbox (the demo) makes up now and then.
    assert (card_of(running_share(4)).kind, card_of(running_share(10)).kind) == (LIVE, VIDEO)


# --- storing and showing -----------------------------------------------------------------------


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("root", password="pw")


def share(sandbox, account, xml: str, peer=PEERS[1]) -> Message:
    item = sandbox.add_letter(account.app_id, xml, peer=peer, msg_type=49)
    sync_account(account)
    return Message.objects.get(account=account, new_msg_id=item["content"]["msg"]["NewMsgId"])


def thread_html(client, message: Message) -> str:
    response = client.get(message.session.get_absolute_url())
    assert response.status_code == 200
    return response.content.decode()


def card_html(html: str, message: Message) -> str:
    """The message's own article in a thread page."""
    start = html.index(f'id="message-{message.pk}"')
    return html[start : html.index("</article>", start)]


LIVE_SHARE = finder_live_xml("coupons", desc="今晚8点 福利直播 🎁", nickname="沙盒小店")


def test_synced_shares_are_stored_as_cards_with_a_readable_preview(synced, sandbox):
    video = Message.objects.get(account=synced, app_type=51)
    live = share(sandbox, synced, LIVE_SHARE, PEERS[3])

    assert video.image_meta["card"]["kind"] == VIDEO
    assert video.title == "Spring collection 春季新品"
    assert live.image_meta["card"] == {
        **live.image_meta["card"],
        "kind": LIVE,
        "title": "今晚8点 福利直播 🎁",
        "author": "沙盒小店",
        "live_status": 1,
    }
    assert video.parse_error == live.parse_error == ""
    assert Session.objects.get(pk=live.session_id).last_message_preview == "今晚8点 福利直播 🎁"


def test_a_video_share_shows_its_card_with_cover_title_author_and_duration(member_client, synced):
    video = Message.objects.get(account=synced, app_type=51)
    card = ShareCard.from_dict(video.image_meta["card"])

    html = card_html(thread_html(member_client, video), video)

    assert 'class="share-card share-video"' in html
    # The cover is on its way (claimed by this open): a placeholder, never the XML's URL.
    assert (
        'class="image-placeholder is-loading" role="img" aria-label="Loading the cover…">▶' in html
    )
    assert "<img" not in html and card.cover_url not in html and card.avatar_url not in html
    assert '<span class="share-title">Spring collection 春季新品</span>' in html
    # The author's initial, in a colour of its own: the avatar URL is never loaded.
    assert re.search(
        r'<span class="avatar share-avatar" data-hue="\d+" aria-hidden="true">沙</span>'
        r"沙盒小店</span>",
        html,
    )
    assert "▶ 0:33" in html
    assert "shared a Channels video" in html
    assert 'data-aspect-ratio="750 / 1000"' in html  # a 9:16 video is shown 3:4 at most
    assert FINDER_UPGRADE_TITLE not in html


def test_a_live_share_shows_its_live_badge(member_client, synced, sandbox):
    live = share(sandbox, synced, LIVE_SHARE)

    html = card_html(thread_html(member_client, live), live)

    assert 'class="share-card share-live"' in html
    assert 'class="share-badge share-badge-live-now"' in html and ">Live now</span>" in html
    assert "今晚8点 福利直播 🎁" in html and "shared a Channels live" in html


def test_card_text_is_escaped_and_foreign_pictures_are_not_loaded(member_client, synced, sandbox):
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    xml = (
        "<msg><appmsg><type>51</type><finderFeed>"
        f"<nickname>{xml_escape(hostile)}</nickname><desc>{xml_escape(hostile)}</desc>"
        "<avatar>https://tracker.example/a.png</avatar><mediaList><media>"
        '<thumbUrl>https://finder.video.qq.com/a?"onerror="alert(1)</thumbUrl>'
        "</media></mediaList></finderFeed></appmsg></msg>"
    )
    message = share(sandbox, synced, xml)

    html = card_html(thread_html(member_client, message), message)

    assert "<script>" not in html and "<img src=x" not in html
    assert escape(hostile) in html  # shown as text, title and author
    assert "finder.video.qq.com" not in html and "tracker.example" not in html
    assert "<img" not in html


def test_a_link_share_links_its_url_safely(member_client, synced, sandbox):
    message = share(sandbox, synced, LINK_XML)

    html = card_html(thread_html(member_client, message), message)

    assert (
        '<a class="share-title" href="https://shop.example/618?a=1&amp;b=2" target="_blank" '
        'rel="noopener noreferrer nofollow">618 活动说明</a>'
    ) in html
    assert "点击查看<br>活动规则" in html
    assert "tracker.example" not in html and "shared a link" in html


def test_a_mini_program_card_names_its_source_and_links_nowhere(member_client, synced, sandbox):
    message = share(sandbox, synced, MINI_PROGRAM_XML)

    html = card_html(thread_html(member_client, message), message)

    assert '<span class="share-title">美团外卖，送啥都快</span>' in html
    assert "美团外卖丨外卖美食奶茶咖啡水果</span>" in html and "shared a mini program" in html
    assert "waerrpage" not in html


def test_an_hour_long_video_shows_hours_in_its_duration(member_client, synced, sandbox):
    message = share(
        sandbox, synced, finder_feed_xml("long", desc="直播回放", nickname="店", duration=3665)
    )

    html = card_html(thread_html(member_client, message), message)

    assert "▶ 1:01:05" in html


@pytest.mark.parametrize(("xml", "error"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_xml_is_stored_and_shown_as_a_plain_card_without_its_xml(
    client, member, superuser, synced, sandbox, xml, error
):
    message = share(sandbox, synced, xml)

    assert message.content == xml and f"app message XML: {error}" in message.parse_error
    client.force_login(member)
    html = card_html(thread_html(client, message), message)
    assert '<div class="app-card">' in html and "Untitled" in html and "App message" in html
    assert "Part of this message could not be read." in html
    for fragment in ("<msg", "&lt;msg", "DOCTYPE", "lollol", "<script>", "长长长"):
        assert fragment not in html
    # An admin may open the raw payload: escaped, folded away under the notice.
    client.force_login(superuser)
    admin_html = card_html(thread_html(client, message), message)
    assert '<details class="raw-payload">' in admin_html and "<msg" not in admin_html


def test_a_letter_stored_before_cards_still_shows_its_title(member_client, synced):
    video = Message.objects.get(account=synced, app_type=51)
    Message.objects.filter(pk=video.pk).update(image_meta=None, title="旧的标题")

    html = card_html(thread_html(member_client, video), video)

    assert '<div class="app-card">' in html
    assert '<span class="app-title">旧的标题</span>' in html
    assert "shared a Channels video" in html


def test_a_thread_of_share_cards_renders_without_queries(
    synced, sandbox, member, django_assert_num_queries
):
    share(sandbox, synced, LIVE_SHARE)
    messages = list(Message.objects.filter(account=synced, msg_type=49).select_related("author"))
    assert {m.image_meta["card"]["kind"] for m in messages} == {VIDEO, LIVE, LINK}
    reader = rendering.Reader.of(member, "token")

    with django_assert_num_queries(0):
        html = rendering.render_messages(messages, reader)

    assert html.count('class="share-card') == len(messages)


# --- reparse_app_messages ---------------------------------------------------------------------


def stored_cards(account) -> dict[int, tuple]:
    return {
        m.pk: (m.title, m.app_type, m.image_meta, m.parse_error)
        for m in Message.objects.filter(account=account, msg_type=49)
    }


def test_reparse_fills_in_cards_of_letters_stored_before_and_changes_nothing_twice(synced, sandbox):
    share(sandbox, synced, LIVE_SHARE, PEERS[3])
    share(sandbox, synced, BILLION_LAUGHS)
    latest = share(sandbox, synced, finder_feed_xml("n", desc="新视频", nickname="店"), PEERS[4])
    fresh = stored_cards(synced)
    # As letters were stored before cards: the appmsg's own title, no card, and that title as
    # the list preview of the session whose latest letter is a share.
    Message.objects.filter(account=synced, msg_type=49, parse_error="").update(
        image_meta=None, title=FINDER_UPGRADE_TITLE
    )
    Session.objects.filter(pk=latest.session_id).update(last_message_preview=FINDER_UPGRADE_TITLE)

    out = StringIO()
    call_command("reparse_app_messages", batch_size=2, stdout=out)

    assert stored_cards(synced) == fresh
    assert (
        "Read 5 app message(s): 4 updated, 1 already up to date; 1 session preview(s) refreshed."
    ) in out.getvalue()
    assert Session.objects.get(pk=latest.session_id).last_message_preview == "新视频"
    again = StringIO()
    call_command("reparse_app_messages", stdout=again)
    assert "0 updated, 5 already up to date; 0 session preview(s)" in again.getvalue()


def test_reparse_reads_a_letter_without_its_raw_item_from_its_content(synced):
    video = Message.objects.get(account=synced, app_type=51)
    Message.objects.filter(pk=video.pk).update(raw=None, image_meta=None, title="")

    call_command("reparse_app_messages", stdout=StringIO())

    video.refresh_from_db()
    assert video.image_meta["card"]["kind"] == VIDEO
    assert video.title == "Spring collection 春季新品"


def test_reparse_reads_an_empty_or_broken_letter_without_its_raw_item_as_ingest_would(db):
    def reparsed(content: str) -> dict:
        return reparsed_values(Message(msg_type=49, content=content, raw=None))

    assert reparsed("") == {"title": "", "app_type": None, "image_meta": None, "parse_error": ""}
    broken = reparsed("<msg><appmsg>")
    assert broken["image_meta"] is None
    assert broken["parse_error"].startswith("app message XML: malformed")


def test_reparse_queries_per_batch_not_per_letter(synced, sandbox, django_assert_max_num_queries):
    for number in range(6):
        share(sandbox, synced, finder_feed_xml(f"n{number}", desc=f"视频 {number}", nickname="店"))
    Message.objects.filter(account=synced, msg_type=49).update(image_meta=None)

    # A batch: one read, one bulk update (plus its transaction), one session read and update.
    with django_assert_max_num_queries(6 * 4 + 4):
        call_command("reparse_app_messages", batch_size=3, stdout=StringIO())

    assert not Message.objects.filter(account=synced, msg_type=49, image_meta=None).exists()


def test_reparse_walks_every_key_window_however_small(synced, sandbox):
    for number in range(4):
        share(sandbox, synced, finder_feed_xml(f"w{number}", desc=f"视频 {number}", nickname="店"))
    Message.objects.filter(account=synced, msg_type=49).update(image_meta=None)

    batches = list(reparse_app_messages(batch_size=2, window=3))

    assert sum(batch.changed for batch in batches) == 6
    assert max(batch.read for batch in batches) <= 2
    assert not Message.objects.filter(account=synced, msg_type=49, image_meta=None).exists()


def test_reparse_refuses_a_batch_size_below_one(db):
    with pytest.raises(Exception, match="at least 1"):
        call_command("reparse_app_messages", batch_size=0, stdout=StringIO())


# --- covers: fetched and stored through the pictures path, never loaded from the XML -----------


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    """Thumbnail downloads queued (message ids), instead of run."""
    calls: list[int] = []
    monkeypatch.setattr(
        tasks.fetch_thumbnail, "apply_async", lambda args, **options: calls.append(args[0])
    )
    return calls


@pytest.fixture(autouse=True)
def _empty_media(settings, tmp_path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


def open_thread(client, message: Message, capture, *, execute: bool = True):
    with capture(execute=execute):
        response = client.get(message.session.get_absolute_url(), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return response


def test_a_cover_is_claimed_once_on_thread_open_and_stored_from_the_sandbox(
    member_client, synced, sandbox, queued, django_capture_on_commit_callbacks
):
    video = Message.objects.get(account=synced, app_type=51)
    cover_url = video.image_meta["card"]["cover_url"]
    assert cover_url.startswith(f"{sandbox.base_url}/_sandbox/covers/")

    first = open_thread(member_client, video, django_capture_on_commit_callbacks)
    open_thread(member_client, video, django_capture_on_commit_callbacks)

    assert queued.count(video.pk) == 1  # once, however often the thread is opened
    assert "Loading the cover" in card_html(first.content.decode(), video)
    # What the images worker runs: the cover URL itself, not downloadImage.
    assert picture_services.fetch_thumbnail(video.pk)
    assert sandbox.calls_to("/message/downloadImage") == []
    link = MessagePicture.objects.select_related("picture").get(message=video, kind="thumb")
    assert (link.picture.width, link.picture.height) == (180, 320)  # a 9:16 cover, scaled
    assert link.picture.path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The thread's poll redraws the card with our copy (the letter's updated_at moved).
    answer = member_client.get(
        reverse("inbox:thread_poll", args=[video.session_id]),
        {"since": first.context["thread_since"], "tail": "1"},
        HTTP_HX_REQUEST="true",
    )
    html = card_html(answer.content.decode(), video)
    url = f"/messages/{video.pk}/picture/thumb/?v={link.picture.sha256[:16]}"
    assert f'<img src="{url}" alt="" loading="lazy">' in html
    assert "image-placeholder is-loading" not in html
    assert sandbox.base_url not in html and "/_sandbox/" not in html


def test_a_stored_cover_is_served_to_members_only(client, member_client, outsider, synced, sandbox):
    video = Message.objects.get(account=synced, app_type=51)
    assert picture_services.fetch_thumbnail(video.pk)
    url = reverse("inbox:pictures:picture", args=[video.pk, "thumb"])

    response = member_client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    client.force_login(outsider)
    assert client.get(url).status_code == 404


def test_a_cover_on_an_untrusted_host_is_never_fetched(
    member_client, synced, sandbox, queued, monkeypatch, django_capture_on_commit_callbacks
):
    message = share(sandbox, synced, LINK_XML)  # its thumbnail is on tracker.example
    downloads: list[str] = []
    monkeypatch.setattr(
        picture_storage, "download", lambda url, **options: downloads.append(url) or b""
    )

    html = card_html(
        open_thread(member_client, message, django_capture_on_commit_callbacks).content.decode(),
        message,
    )

    assert message.pk not in queued
    assert "tracker.example" not in html and "<img" not in html
    assert "Loading the cover" not in html  # nothing is on its way
    assert 'class="app-icon"' in html and "share-cover" not in html  # the icon, as before
    # Even a task queued some other way refuses it before any request.
    assert not picture_services.fetch_thumbnail(message.pk)
    assert downloads == []
    error = MessagePicture.objects.get(message=message).error
    assert "not on a picture host this inbox downloads from" in error


def test_an_oversize_cover_is_refused_with_a_visible_error_and_nothing_stored(
    member_client, synced, sandbox, settings, django_capture_on_commit_callbacks
):
    settings.PICTURES_MAX_BYTES = 200
    video = Message.objects.get(account=synced, app_type=51)

    # Opening runs the claimed download (tasks run inline in tests) after the page's commit.
    open_thread(member_client, video, django_capture_on_commit_callbacks)
    html = card_html(
        open_thread(member_client, video, django_capture_on_commit_callbacks).content.decode(),
        video,
    )

    link = MessagePicture.objects.get(message=video)
    assert link.picture is None and "larger than 200" in link.error
    assert not StoredPicture.objects.exists()
    assert "No cover: the picture is larger than 200" in html
    assert '<span class="image-placeholder" aria-hidden="true">▶</span>' in html
    assert "<img" not in html


def test_a_cover_the_retention_sweep_deleted_says_so(
    member_client, synced, sandbox, settings, queued, django_capture_on_commit_callbacks
):
    settings.PICTURES_RETENTION_DAYS = 30
    video = Message.objects.get(account=synced, app_type=51)
    assert picture_services.fetch_thumbnail(video.pk)
    StoredPicture.objects.update(last_used_at=timezone.now() - timedelta(days=31))
    picture_services.prune_pictures()

    html = card_html(
        open_thread(member_client, video, django_capture_on_commit_callbacks).content.decode(),
        video,
    )

    assert "The cover was deleted after 30 days without being viewed." in html
    assert "<img" not in html
    assert video.pk not in queued  # not fetched again: its URL has expired upstream by now


def test_share_covers_add_no_query_to_a_thread_of_image_letters(
    member_client, synced, sandbox, queued, django_capture_on_commit_callbacks
):
    """The stored pictures of a page's image letters and covers are one query, their claim one
    statement: a thread with shares costs what a thread with an image letter costs."""
    video = Message.objects.get(account=synced, app_type=51)
    photo = Message.objects.filter(session=video.session, msg_type=3).first()
    assert photo is not None  # the scripted conversation has both

    def count(call) -> int:
        with CaptureQueriesContext(connection) as captured:
            call()
        return len(captured)

    open_thread(member_client, video, django_capture_on_commit_callbacks)
    again = count(lambda: open_thread(member_client, video, django_capture_on_commit_callbacks))
    Message.objects.filter(pk=video.pk).update(msg_type=1, image_meta=None)
    without_cover = count(
        lambda: open_thread(member_client, video, django_capture_on_commit_callbacks)
    )

    assert again == without_cover
    assert sorted(queued) == sorted([video.pk, photo.pk])


def test_the_sandbox_serves_its_covers_and_nothing_else(sandbox):
    video = finder_feed_xml("x", desc="d", nickname="n", base_url=sandbox.base_url)
    cover_url = card_of(video).cover_url

    served = requests.get(cover_url, timeout=5)
    assert served.status_code == 200 and served.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert storage_sniff(served.content).width == 180
    for name in ("nothex", "0" * 32 + "-9999x9999", "0" * 32 + "-1x1.png.exe"):
        assert (
            requests.get(f"{sandbox.base_url}/_sandbox/covers/{name}.png", timeout=5).status_code
            == 404
        )


def test_pictures_load_only_from_our_own_origin(member_client, synced):
    """With covers, avatars and image letters all served from our storage, the CSP lets the
    page load pictures from nowhere else."""
    video = Message.objects.get(account=synced, app_type=51)

    response = member_client.get(video.session.get_absolute_url())

    policy = response["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["img-src"] == "'self' data:"
