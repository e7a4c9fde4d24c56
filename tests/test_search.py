"""The search box: Chinese substrings, peers by name or id, only what the user may see, and on
PostgreSQL the trigram indexes that keep it fast."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import User
from django.db import connection

from accounts.models import Account
from accounts.sandbox import PEERS
from inbox import search as search_module
from inbox import session_names
from inbox.counters import ensure_triggers
from inbox.models import Message, Session, SessionName
from inbox.search import clean_query, search, search_terms
from inbox.sync import sync_account


@pytest.fixture
def member(account: Account) -> User:
    sync_account(account)
    user = User.objects.create_user("member")
    account.members.add(user)
    return user


def test_a_chinese_phrase_in_the_middle_of_a_letter_is_found(member):
    results = search(member, "保温杯")
    assert [m.content for m in results.messages] == ["你好，请问这款保温杯还有货吗？"]


def test_case_does_not_matter(member):
    assert search(member, "SINGAPORE").messages


def test_sessions_are_found_by_nickname_user_name_or_session_id(member):
    lily = Session.objects.get(peer_username=PEERS[2].username)
    Session.objects.filter(pk=lily.pk).update(peer_nickname="Lily 🌸")
    assert search(member, "lily").sessions == [lily]
    assert lily in search(member, PEERS[2].username[-20:]).sessions
    assert lily in search(member, lily.msg_session_id[:12]).sessions


def test_the_names_search_reads_follow_every_write_to_the_session(member, account):
    lily = Session.objects.get(peer_username=PEERS[2].username)

    def names(session_id):
        return SessionName.objects.filter(pk=session_id).values_list(
            "peer_nickname", "peer_username", "msg_session_id"
        )

    assert list(names(lily.pk)) == [("", lily.peer_username, lily.msg_session_id)]
    Session.objects.filter(pk=lily.pk).update(peer_nickname="Lily")
    lily.refresh_from_db()
    lily.unread_count = 3
    lily.save()  # every column, the names unchanged
    assert list(names(lily.pk)) == [("Lily", lily.peer_username, lily.msg_session_id)]
    created = Session.objects.create(
        account=account,
        msg_session_id="new@findermsg",
        peer_username="v2_new@finder",
        peer_nickname="小新",
        last_message_at=lily.last_message_at,
    )
    assert list(names(created.pk)) == [("小新", "v2_new@finder", "new@findermsg")]
    created.delete()
    assert not names(created.pk).exists()
    assert SessionName.objects.count() == Session.objects.count()


def test_names_triggers_a_migration_lost_come_back_after_migrate(member):
    # SQLite alters a column by copying the table, which drops the table's triggers.
    with connection.cursor() as cursor:
        for statement in session_names._statements(connection.vendor, install=False):
            cursor.execute(statement)
    lily = Session.objects.get(peer_username=PEERS[2].username)
    Session.objects.filter(pk=lily.pk).update(peer_nickname="Lily")
    assert search(member, "lily").sessions == []

    ensure_triggers()  # post_migrate

    assert search(member, "lily").sessions == [lily]
    Session.objects.filter(pk=lily.pk).update(peer_nickname="莉莉")
    assert search(member, "莉莉").sessions == [lily]


def test_one_or_two_characters_find_a_session_by_nickname_only(member):
    xiaolu = Session.objects.filter(peer_username=PEERS[0].username).earliest("pk")
    Session.objects.filter(pk=xiaolu.pk).update(peer_nickname="小鹿同学")
    assert search(member, "小鹿").sessions == [xiaolu]
    assert search(member, "鹿").sessions == [xiaolu]
    # Two characters of an id would match nearly every session: ids need three.
    assert search(member, "v2").sessions == []


def test_image_xml_and_activity_lines_are_not_searched(member):
    assert not search(member, "cdnthumburl").messages


def test_nothing_of_another_account_is_found(account, member):
    sync_account(account)
    stranger = User.objects.create_user("stranger")
    Account.objects.create(name="Other", app_id="wx_other", token="t").members.add(stranger)
    assert search(stranger, "保温杯").empty
    assert search(User.objects.create_superuser("root"), "保温杯").messages


def test_an_empty_query_finds_nothing(member):
    assert search(member, "   ").empty


def test_notes_are_searched_too(member):
    from inbox import services

    session = Session.objects.get(peer_username=PEERS[1].username)
    services.add_note(session, member, "这位客户要求七天无理由退货", uuid.uuid4())
    found = search(member, "无理由")
    assert [m.kind for m in found.messages] == [Message.Kind.NOTE]


def visible_text(user) -> list[Message]:
    """Every text letter and note the user may see, newest first: what search must agree with."""
    accounts = Account.objects.visible_to(user)
    return sorted(
        Message.objects.filter(account__in=accounts, msg_type=Message.Type.TEXT).exclude(
            kind=Message.Kind.ACTIVITY
        ),
        key=lambda m: (m.created_at, m.pk),
        reverse=True,
    )


@pytest.fixture
def shop_letters(account, member, sandbox):
    """Letters about shipping: many hits for 发货, one old hit for a rare term."""
    sandbox.add_letter(account.app_id, "紫砂壶还有吗？")
    for n in range(8):
        sandbox.add_letter(account.app_id, f"第{n}单什么时候发货？", peer=PEERS[n % len(PEERS)])
    sandbox.add_letter(account.app_id, "发了货没有", peer=PEERS[3])
    sandbox.add_letter(account.app_id, "Please send the INVOICE", peer=PEERS[2])
    sync_account(account)


@pytest.mark.parametrize(
    "query", ["货", "发货", "么时候", "什么时候", "发货？", "紫砂壶", "invoice"]
)
@pytest.mark.parametrize("window,hits", [(3, 4), (1000, 30)])
def test_search_finds_exactly_the_newest_letters_containing_the_query(
    shop_letters, member, monkeypatch, query, window, hits
):
    # A small window and page make both plans run: the walk over the newest letters and the
    # index lookup of older ones.
    monkeypatch.setattr(search_module, "RECENT_WINDOW", window)
    monkeypatch.setattr(search_module, "MESSAGE_HITS", hits)

    found = search(member, query).messages

    expected = [m for m in visible_text(member) if query.lower() in m.content.lower()]
    assert expected, "the fixture has letters for every query"
    assert [m.pk for m in found] == [m.pk for m in expected[:hits]]


def test_two_characters_match_only_side_by_side(shop_letters, member):
    assert "发了货没有" not in [m.content for m in search(member, "发货").messages]
    assert "发了货没有" in [m.content for m in search(member, "货").messages]


def test_latin_words_match_whatever_their_case_and_from_their_start(shop_letters, member):
    for query in ("invoice", "INVOICE", "Invo", "send the"):
        assert [m.content for m in search(member, query).messages] == ["Please send the INVOICE"]


def test_a_query_of_punctuation_alone_is_still_a_substring_search(shop_letters, member):
    found = search(member, "？")
    assert found.messages and all("？" in m.content for m in found.messages)


def test_search_terms_are_the_words_and_character_pairs_of_the_query():
    assert search_terms("保温杯") == ["'保温'", "'温杯'"]
    assert search_terms("货") == ["'货'"]
    assert search_terms("Hi, 发货！ SINGAP 2024") == ["'hi':*", "'singap':*", "'2024':*", "'发货'"]
    assert search_terms("？！…") == []


@pytest.mark.postgres
def test_every_substring_of_a_text_is_found_through_its_search_vector(db):
    texts = [
        "老板，我昨天买的衣服尺码不对，可以换吗？\n订单号 20240124-8831",
        "Hi, do you ship to Singapore? 收到货了，质量很好 👍👍",
        "優惠券在直播間右下角的「福利」裡～ ＡＢＣ café",
    ]
    with connection.cursor() as cursor:
        for text in texts:
            for start in range(len(text)):
                for end in range(start + 1, min(start + 7, len(text)) + 1):
                    query = clean_query(text[start:end])
                    terms = search_terms(query)
                    if not query or not terms:
                        continue
                    cursor.execute(
                        "SELECT inbox_search_vector(%s) @@ %s::tsquery",
                        [text, " & ".join(terms)],
                    )
                    assert cursor.fetchone()[0], f"{query!r} in {text!r}"


@pytest.mark.postgres
def test_postgres_has_the_search_indexes(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'inbox_message'"
        )
        indexes = dict(cursor.fetchall())
    assert "inbox_search_vector(content)" in indexes["inbox_message_search_vector"]
    assert "gin" in indexes["inbox_message_search_vector"]
    assert "inbox_message_search_recent" in indexes
    assert "inbox_message_content_trgm" not in indexes
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, indexname FROM pg_indexes "
            "WHERE tablename IN ('inbox_session', 'inbox_sessionname') AND indexdef LIKE '%gin%'"
        )
        gin_indexes = sorted(cursor.fetchall())
    # Off the session row, whose every update would write them again (migration 0018).
    assert gin_indexes == [
        ("inbox_sessionname", "inbox_sessionname_nickname_trgm"),
        ("inbox_sessionname", "inbox_sessionname_nickname_vector"),
        ("inbox_sessionname", "inbox_sessionname_session_id_trgm"),
        ("inbox_sessionname", "inbox_sessionname_username_trgm"),
    ]


@pytest.mark.parametrize(
    "hostile",
    [
        # 200,000 distinct Chinese characters: 400,000 lexemes, over the tsvector's 1 MB.
        "".join(chr(0x4E00 + (n * 7919) % 20000) for n in range(200_000)),
        # Runs of 100 random letters: every suffix of every run is a lexeme.
        "".join(uuid.uuid4().hex * 3 + uuid.uuid4().hex[:4] + " " for _ in range(20_000)),
    ],
    ids=["distinct-chinese", "random-ascii-runs"],
)
def test_a_hostile_letter_is_stored_and_its_opening_found(
    account, member, sandbox, monkeypatch, hostile
):
    """The search index is computed on every insert: a letter whose lexemes do not fit a
    tsvector must not fail its page (and stall the account's sync) on PostgreSQL."""
    sandbox.add_letter(account.app_id, "开头" + hostile)
    sync_account(account)

    stored = Message.objects.get(content__startswith="开头")
    assert stored.content == "开头" + hostile
    # Outside the recent window, so found through the index (the vector's bounded part).
    monkeypatch.setattr(search_module, "RECENT_WINDOW", 1)
    sandbox.add_letter(account.app_id, "newer letter")
    sync_account(account)
    assert stored.pk in [m.pk for m in search(member, "开头").messages]
