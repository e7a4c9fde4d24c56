"""inbox.payloads: upstream JSON → Letter / Quarantined records, image XML → ImageMeta.

Pure functions, so these tests need neither a database nor the sandbox."""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from inbox.payloads import (
    ImageMeta,
    Letter,
    PayloadError,
    Quarantined,
    parse_app_xml,
    parse_image_xml,
    parse_item,
    parse_sync_page,
)

EXAMPLE_NEW_MSG_IDS = [
    5871873953492479000,
    1054704077635816600,
    243683914400108300,
    7648226390526412000,
    7744705344788547000,
]
ACCOUNT_WXID = "wxid_0xsqb3o0tsvz22"
ACCOUNT_FINDER = (
    "v2_060000231003b20faec8c7e28811c4d5cc0ded37b0779c48c759a7446a87688c2774e5300c32@finder"
)
PEER = "v2_060000231003b20faec8c6e18f10c7d6c903ec3db0776955d3d97c6b329d6aa58693bcdb7ad1@finder"
SESSION = "3eab1521919d4531c83a166faa56cf844737c4a295b127f3edcb68ed4375d049@findermsg"
THUMB_URL = (
    "3057020100044b30490201000204e49785f102032f5b0d0204e0689377020465b0cae10424366264323265"
    "32302d363466332d346135612d383238312d6636303061333033623762620204051438010201000405004c4c6d00"
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
<msg><img md5="&lol9;" cdnthumbwidth="120" /></msg>"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE msg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<msg><img md5="&xxe;" cdnthumbwidth="120" /></msg>"""


@pytest.fixture
def example_page(example_response):
    return parse_sync_page(copy.deepcopy(example_response["data"]))


def image_item(make_item, xml: str) -> dict:
    return make_item(content__msg__MsgType=3, content__msg__Content={"string": xml})


# --- the service's own example ---------------------------------------------------------------


def test_example_page_gives_five_letters_and_the_next_cursor(example_page, example_response):
    assert len(example_page.letters) == 5
    assert example_page.quarantined == []
    assert example_page.key_buff == example_response["data"]["keyBuff"]


def test_example_new_msg_ids_come_through_as_exact_integers(example_page):
    ids = [letter.new_msg_id for letter in example_page.letters]

    assert ids == EXAMPLE_NEW_MSG_IDS
    assert all(type(new_msg_id) is int for new_msg_id in ids)


def test_example_text_letter_is_parsed_field_by_field(example_page, example_response):
    letter = example_page.letters[2]

    assert letter.new_msg_id == 243683914400108300
    assert letter.msg_id == 3
    assert letter.msg_seq == 3
    assert letter.seq == 3
    assert letter.msg_type == 1
    assert letter.is_sender is True
    assert letter.from_username == ACCOUNT_FINDER
    assert letter.to_username == PEER
    assert letter.peer_username == PEER
    assert letter.my_username == ACCOUNT_FINDER
    assert letter.msg_session_id == SESSION
    assert letter.content == "文本"
    assert letter.created_at == datetime(2024, 1, 24, 8, 27, 20, tzinfo=UTC)
    assert letter.created_at.tzinfo is not None
    assert letter.msg_source == ""
    assert letter.ext_info == "CAIQAw=="
    assert letter.sub_type == 2
    assert letter.sync_key_type == 5
    assert letter.item_type == 1
    assert letter.upstream_status == 3
    assert letter.img_status == 1
    assert letter.image is None
    assert letter.parse_error == ""
    assert letter.raw == example_response["data"]["list"][2]


def test_example_first_letter_keeps_its_msg_source_and_other_numbers(example_page):
    letter = example_page.letters[0]

    assert letter.msg_source == "<msgsource><pua>1</pua></msgsource>"
    assert letter.sub_type == 0
    assert letter.sync_key_type == 1
    assert letter.ext_info == "CAEQAQ=="
    assert letter.content == "1"
    assert letter.created_at == datetime.fromtimestamp(1706084719, tz=UTC)


def test_direction_comes_from_is_sender_not_from_user_names(example_page):
    first, second, third = example_page.letters[:3]

    # The account writes as its WeChat id in the first letter and as its Channels name in the
    # third: both are "sent" because isSender says so.
    assert first.from_username == ACCOUNT_WXID
    assert first.is_sender is True
    assert first.peer_username == PEER
    assert second.is_sender is False
    assert second.from_username == PEER
    assert second.peer_username == PEER
    assert third.is_sender is True
    assert third.peer_username == PEER


def test_example_image_letter_has_its_thumbnail_metadata(example_page):
    letter = example_page.letters[4]

    assert letter.msg_type == 3
    assert letter.img_status == 2
    assert letter.parse_error == ""
    assert letter.image == ImageMeta(
        thumb_url=THUMB_URL,
        thumb_aes_key="38bd282fa5b21a42590269084f95975f",
        thumb_width=120,
        thumb_height=120,
        thumb_length=1315,
        mid_url=THUMB_URL,
        big_url=THUMB_URL,
        length=22001,
        hd_length=1096,
        md5="704de7ebbc107a51a4f0986253a6d3b6",
        aes_key="38bd282fa5b21a42590269084f95975f",
    )
    assert letter.image.aspect_ratio == 1.0


def test_image_meta_survives_a_round_trip_through_a_dict(example_page):
    image = example_page.letters[4].image

    assert ImageMeta.from_dict(json.loads(json.dumps(image.to_dict()))) == image
    assert ImageMeta.from_dict({**image.to_dict(), "added_later": 1}) == image


# --- hostile XML -----------------------------------------------------------------------------


def test_billion_laughs_in_an_image_is_refused_fast_and_the_letter_kept(make_item):
    started = time.perf_counter()
    letter = parse_item(image_item(make_item, BILLION_LAUGHS))
    elapsed = time.perf_counter() - started

    assert isinstance(letter, Letter)
    assert letter.image is None
    assert "image XML: refused" in letter.parse_error
    assert elapsed < 0.5
    assert "lollol" not in repr(letter)


def test_external_entity_in_an_image_is_refused_and_nothing_is_read(make_item):
    letter = parse_item(image_item(make_item, EXTERNAL_ENTITY))

    assert isinstance(letter, Letter)
    assert letter.image is None
    assert "image XML: refused" in letter.parse_error
    assert "root:" not in repr(letter)


def test_truncated_image_xml_is_a_parse_error(make_item, example_response):
    xml = example_response["data"]["list"][4]["content"]["msg"]["Content"]["string"]

    letter = parse_item(image_item(make_item, xml[: len(xml) // 2]))

    assert letter.image is None
    assert "image XML: malformed" in letter.parse_error
    assert letter.content == xml[: len(xml) // 2]


@pytest.mark.parametrize(
    ("xml", "error"),
    [
        ("", "malformed"),
        ("<msg><voicemsg /></msg>", "no <img> element"),
        ("<msg><img md5='x' /></msg>" + " " * 300_000, "larger than"),
        ("not xml at all", "malformed"),
    ],
)
def test_unusable_image_xml_gives_a_parse_error(make_item, xml, error):
    letter = parse_item(image_item(make_item, xml))

    assert letter.image is None
    assert error in letter.parse_error


def test_image_numbers_that_are_not_numbers_are_left_unknown():
    image = parse_image_xml(
        '<msg><img cdnthumbwidth="wide" cdnthumbheight="-5" cdnthumblength="99999999999999999999"'
        ' length=" 42 " md5="abc" /></msg>'
    )

    assert image.thumb_width is None
    assert image.thumb_height is None
    assert image.thumb_length is None
    assert image.length == 42
    assert image.md5 == "abc"
    assert image.aspect_ratio == 1.0


def test_app_message_title_and_type_are_parsed(make_item):
    xml = "<msg><appmsg><title> 春季新品 </title><type>51</type></appmsg></msg>"

    letter = parse_item(make_item(content__msg__MsgType=49, content__msg__Content={"string": xml}))

    assert (letter.title, letter.app_type) == ("春季新品", 51)
    assert letter.parse_error == ""


def test_app_message_with_an_entity_bomb_is_refused():
    with pytest.raises(ValueError, match="refused"):
        parse_app_xml(BILLION_LAUGHS.replace("<msg><img", "<msg><appmsg").replace("/>", "/>"))


def test_unknown_message_types_are_kept_as_they_come(make_item):
    letter = parse_item(
        make_item(content__msg__MsgType=9999, content__msg__Content={"string": "<msg>?</msg>"})
    )

    assert (letter.msg_type, letter.content, letter.parse_error) == (9999, "<msg>?</msg>", "")


# --- hostile strings -------------------------------------------------------------------------


def test_huge_text_is_kept_intact(make_item):
    text = "长" * (5 * 1024 * 1024)

    letter = parse_item(make_item(content__msg__Content={"string": text}))

    assert letter.content == text
    assert letter.parse_error == ""


def test_nul_bytes_and_lone_surrogates_are_replaced_everywhere(make_item):
    item = make_item(
        content__msg__Content={"string": "a\x00b\ud800c"},
        content__msg__FromUserName={"string": "v2_\udfffpeer@finder"},
        content__msg__MsgSource="<msgsource>\x00</msgsource>",
        content__extinfo="\x00",
    )
    item["content"]["msg"]["odd\x00key\udc80"] = "\ud83d"

    letter = parse_item(item)

    assert letter.content == "a\ufffdb?c"
    assert letter.from_username == "v2_?peer@finder"
    assert letter.msg_source == "<msgsource>\ufffd</msgsource>"
    assert letter.ext_info == "\ufffd"
    # Everything kept must be encodable, raw JSON included: PostgreSQL refuses the rest.
    json.dumps(letter.raw, ensure_ascii=False).encode("utf-8")
    assert "\x00" not in json.dumps(letter.raw)
    assert letter.raw["content"]["msg"]["odd\ufffdkey?"] == "?"


@pytest.mark.parametrize("field", ["FromUserName", "ToUserName"])
def test_over_long_user_names_are_cut_with_a_note(make_item, field):
    letter = parse_item(make_item(**{f"content__msg__{field}": {"string": "v" * 5000}}))

    assert isinstance(letter, Letter)
    assert getattr(letter, {"FromUserName": "from_username", "ToUserName": "to_username"}[field])
    assert len(letter.from_username) <= 200
    assert len(letter.to_username) <= 200
    assert f"{field} cut to 200 characters" in letter.parse_error
    assert letter.raw["content"]["msg"][field]["string"] == "v" * 5000


def test_over_long_extinfo_is_cut(make_item):
    letter = parse_item(make_item(content__extinfo="x" * 501))

    assert letter.ext_info == "x" * 500
    assert "extinfo cut" in letter.parse_error


# --- wrong types -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected", "error"),
    [
        ({"content__msg__MsgType": "3x"}, {"msg_type": 0}, "MsgType"),
        ({"content__msg__MsgType": [1]}, {"msg_type": 0}, "MsgType"),
        ({"content__msg__MsgType": 2**40}, {"msg_type": 0}, "MsgType"),
        ({"content__msg__MsgType": True}, {"msg_type": 0}, "MsgType"),
        ({"content__msg__Content": ["文本"]}, {"content": ""}, "Content is list"),
        ({"content__msg__Content": {"string": {"x": 1}}}, {"content": ""}, "Content is dict"),
        ({"content__msg__FromUserName": 7}, {"from_username": "7"}, ""),
        ({"content__msg__MsgId": "seven"}, {"msg_id": None}, "MsgId"),
        ({"content__msg__MsgId": 1.5}, {"msg_id": None}, "MsgId"),
        ({"content__msg__MsgSeq": 2**70}, {"msg_seq": None}, "MsgSeq"),
        ({"content__seq": None}, {"seq": None}, ""),
        ({"content__isSender": "yes"}, {"is_sender": False}, "isSender"),
        ({"content__isSender": 2}, {"is_sender": False}, "isSender"),
        ({"content__msg__Status": {"a": 1}}, {"upstream_status": None}, "Status"),
        ({"subType": "2"}, {"sub_type": 2}, ""),
        ({"syncKeyType": -(2**40)}, {"sync_key_type": None}, "syncKeyType"),
        ({"content__msg__MsgSource": ["x"]}, {"msg_source": ""}, "MsgSource"),
    ],
)
def test_wrong_types_become_defaults_with_a_parse_error(make_item, overrides, expected, error):
    letter = parse_item(make_item(**overrides))

    assert isinstance(letter, Letter)
    for name, value in expected.items():
        assert getattr(letter, name) == value
    if error:
        assert error in letter.parse_error
    else:
        assert letter.parse_error == ""


@pytest.mark.parametrize(
    "value", ["--5", "²", "٣", "5-", "-", "+5", " 5", "1_000", "0x10", "9" * 40], ids=repr
)
def test_strings_that_only_look_like_numbers_are_refused_not_raised(make_item, value):
    letter = parse_item(
        make_item(
            content__msg__MsgType=value,
            content__msg__MsgId=value,
            content__msg__CreateTime=value,
            content__seq=value,
        )
    )

    assert isinstance(letter, Letter)
    assert (letter.msg_type, letter.msg_id, letter.seq) == (0, None, None)
    for name in ("MsgType", "MsgId", "CreateTime", "seq"):
        assert name in letter.parse_error


@pytest.mark.parametrize("value", ["²", "٣٤", "１２"], ids=repr)
def test_a_new_msg_id_of_non_ascii_digits_is_quarantined_not_raised(make_item, value):
    record = parse_item(make_item(content__msg__NewMsgId=value))

    assert isinstance(record, Quarantined)
    assert "NewMsgId" in record.error


def test_image_and_app_numbers_of_non_ascii_digits_are_left_unknown(make_item):
    image = parse_image_xml('<msg><img cdnthumbwidth="²" cdnthumbheight="١٢" length="12" /></msg>')
    card, app_type, _notes = parse_app_xml(
        "<msg><appmsg><title>t</title><type>²</type></appmsg></msg>"
    )

    assert (image.thumb_width, image.thumb_height, image.length) == (None, None, 12)
    assert (card.title, app_type) == ("t", None)


def test_a_page_is_never_stopped_by_an_item_the_parser_trips_on(make_item):
    # Whatever an item holds, the page parses: the item is kept (as a letter or quarantined).
    hostile = [
        make_item(content__msg__MsgType="--5"),
        make_item(content__msg__NewMsgId="²"),
        make_item(content__msg__CreateTime={"$date": 1}),
        {"content": {"msg": {"NewMsgId": 1, "Content": {"string": None}}, "msgSessionId": "s"}},
        {"content": {"msg": {"NewMsgId": 2}, "msgSessionId": "s", "isSender": [1]}},
        {"content": {"msg": {"NewMsgId": 3}, "msgSessionId": "s"}, "subType": float("nan")},
        {"content": {"msg": {"NewMsgId": 4}, "msgSessionId": "s"}, "subType": float("inf")},
    ]

    page = parse_sync_page({"list": hostile, "keyBuff": "next"})

    assert page.item_count == len(hostile)


def test_an_item_nested_deeper_than_the_parser_follows_is_quarantined_as_a_summary(make_item):
    deep: Any = "bottom"
    for _ in range(5000):
        deep = [deep]
    item = make_item(content__msg__Extra=deep)

    page = parse_sync_page({"list": [make_item(), item, make_item()], "keyBuff": "next"})

    assert len(page.letters) == 2
    (record,) = page.quarantined
    assert record.error.startswith("item could not be parsed (RecursionError")
    assert isinstance(record.raw, str)
    assert "'NewMsgId': " in record.raw
    assert len(record.raw) < 10_000
    json.dumps(record.raw)


@pytest.mark.parametrize("create_time", ["soon", 12, 2**62, None, 1.5e9])
def test_unusable_create_time_falls_back_to_when_it_was_received(make_item, create_time):
    received_at = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)

    letter = parse_item(make_item(content__msg__CreateTime=create_time), received_at=received_at)

    assert letter.created_at == received_at
    assert "CreateTime" in letter.parse_error


def test_missing_create_time_falls_back_too(make_item):
    received_at = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)

    letter = parse_item(make_item(drop=["content__msg__CreateTime"]), received_at=received_at)

    assert letter.created_at == received_at
    assert letter.parse_error == "CreateTime missing"


def test_a_bare_item_with_only_ids_is_still_a_letter():
    letter = parse_item({"content": {"msg": {"NewMsgId": 1}, "msgSessionId": "s@findermsg"}})

    assert isinstance(letter, Letter)
    assert (letter.new_msg_id, letter.msg_type, letter.content, letter.is_sender) == (
        1,
        0,
        "",
        False,
    )


def test_new_msg_id_as_a_decimal_string_is_accepted(make_item):
    letter = parse_item(make_item(content__msg__NewMsgId=str(2**64 - 1)))

    assert letter.new_msg_id == 2**64 - 1


@pytest.mark.parametrize(
    "new_msg_id",
    [-1, 0, 2**64, 2**70, 5.871873953492479e18, "12ab", "", True, None, [1], {"v": 1}],
    ids=repr,
)
def test_item_without_a_usable_new_msg_id_is_quarantined(make_item, new_msg_id):
    record = parse_item(make_item(content__msg__NewMsgId=new_msg_id))

    assert isinstance(record, Quarantined)
    assert "NewMsgId" in record.error
    assert record.raw["content"]["msg"]["NewMsgId"] == new_msg_id


def test_item_with_its_new_msg_id_missing_is_quarantined(make_item):
    record = parse_item(make_item(drop=["content__msg__NewMsgId"]))

    assert isinstance(record, Quarantined)
    assert record.error == "NewMsgId None is not an unsigned 64-bit integer"


@pytest.mark.parametrize(
    ("session_id", "error"),
    [
        (None, "no msgSessionId"),
        ("", "no msgSessionId"),
        ("   ", "no msgSessionId"),
        (12345, "no msgSessionId"),
        ("s" * 10_000, "longer than 200"),
    ],
    ids=["null", "empty", "blank", "number", "10k"],
)
def test_item_without_a_usable_session_id_is_quarantined(make_item, session_id, error):
    record = parse_item(make_item(content__msgSessionId=session_id))

    assert isinstance(record, Quarantined)
    assert error in record.error


def test_item_with_its_session_id_missing_is_quarantined(make_item):
    record = parse_item(make_item(drop=["content__msgSessionId"]))

    assert isinstance(record, Quarantined)


@pytest.mark.parametrize(
    "item",
    [None, 42, "item", [1, 2], {"content": None}, {"content": {"msg": "x"}}, {}],
    ids=repr,
)
def test_item_that_is_not_a_letter_shape_is_quarantined(item):
    record = parse_item(item)

    assert isinstance(record, Quarantined)
    assert record.raw == item
    assert len(record.fingerprint) == 64


def test_quarantined_fingerprint_is_stable_and_tells_items_apart(make_item):
    item = make_item(content__msg__NewMsgId=-1)

    first = parse_item(item)
    again = parse_item(json.loads(json.dumps(item)))
    other = parse_item(make_item(content__msg__NewMsgId=-1))

    assert first.fingerprint == again.fingerprint
    assert first.fingerprint != other.fingerprint


# --- pages -----------------------------------------------------------------------------------


def test_page_with_one_bad_item_keeps_the_others(make_item):
    good = [make_item(), make_item()]
    bad = make_item(content__msg__NewMsgId=-5)

    page = parse_sync_page({"list": [good[0], bad, good[1]], "keyBuff": "next"})

    assert [letter.new_msg_id for letter in page.letters] == [
        item["content"]["msg"]["NewMsgId"] for item in good
    ]
    assert [record.raw for record in page.quarantined] == [bad]
    assert page.item_count == 3
    assert page.key_buff == "next"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (None, "not an object"),
        ([1, 2], "not an object"),
        ("list", "not an object"),
        ({"list": {"a": 1}, "keyBuff": "x"}, "not a list"),
        ({"list": "[]", "keyBuff": "x"}, "not a list"),
        ({"list": [], "keyBuff": 5}, "not a string"),
    ],
    ids=["null", "array", "string", "list-object", "list-string", "keyBuff-number"],
)
def test_page_that_is_not_a_page_is_refused_as_a_whole(data, error):
    with pytest.raises(PayloadError, match=error):
        parse_sync_page(data)


def test_page_with_items_but_no_cursor_is_refused(make_item):
    with pytest.raises(PayloadError, match="no keyBuff"):
        parse_sync_page({"list": [make_item()], "keyBuff": ""})


def test_empty_page_is_caught_up():
    page = parse_sync_page({"list": None, "keyBuff": None})

    assert (page.item_count, page.key_buff) == (0, "")
