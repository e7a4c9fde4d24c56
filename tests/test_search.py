"""The search box: Chinese substrings, peers by name or id, only what the user may see, and on
PostgreSQL the trigram indexes that keep it fast."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import User
from django.db import connection

from accounts.models import Account
from accounts.sandbox import PEERS
from inbox.models import Message, Session
from inbox.search import search
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


@pytest.mark.postgres
def test_postgres_has_trigram_indexes_for_search(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE 'inbox_%%_trgm'"
        )
        indexes = dict(cursor.fetchall())
    assert set(indexes) == {
        "inbox_message_content_trgm",
        "inbox_session_nickname_trgm",
        "inbox_session_username_trgm",
        "inbox_session_session_id_trgm",
    }
    assert all("gin_trgm_ops" in definition for definition in indexes.values())
    assert "upper(content)" in indexes["inbox_message_content_trgm"]


@pytest.mark.postgres
def test_postgres_can_answer_a_substring_search_from_the_index(db):
    query = Message.objects.filter(content__icontains="保温杯").only("pk")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = query.explain()
    assert "inbox_message_content_trgm" in plan
