"""The fast ingest path: letters COPY'd into the message table on PostgreSQL (bulk_create on
SQLite) store exactly what the ORM would; response JSON parsed by orjson where it is exact;
benchmark_sync's raw-COPY baseline."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from accounts.client import parse_json
from accounts.models import Account
from accounts.sandbox import IMAGE_XML
from inbox.models import Message, Session
from inbox.payloads import parse_sync_page
from inbox.sync import account_lease, message_from_letter, store_page

# Everything a stored letter has that the ORM would also give it, bar what the database assigns.
COMPARED = [
    field.attname
    for field in Message._meta.concrete_fields
    if field.attname not in ("id", "stored_at", "updated_at")
]


def test_stored_letters_equal_the_rows_the_orm_would_make(account, make_item):
    image = IMAGE_XML.format(
        key="k", url="u", width=120, height=90, thumb_length=1, length=2, hd_length=3, md5="m"
    )
    items = [
        make_item(),
        make_item(content__isSender=1, content__msg__NewMsgId=2**64 - 1),
        make_item(content__msg__MsgType=3, content__msg__Content={"string": image}),
        make_item(
            content__msg__MsgType="not a number", content__msg__Content={"string": "a\tb\\n"}
        ),
        make_item(content__msg__Extra={"big": 10**30, "zh": "中文\n", "x": [1.5, None]}),
    ]
    page = parse_sync_page({"list": items, "keyBuff": "next"})
    with account_lease(account) as lease:
        store_page(account, page, lease_token=lease, expected="")

    sessions = {session.msg_session_id: session for session in Session.objects.all()}
    stored = {message.new_msg_id: message for message in Message.objects.all()}
    assert len(stored) == len(items)
    for letter in page.letters:
        expected = message_from_letter(account, sessions[letter.msg_session_id], letter)
        message = stored[letter.new_msg_id]
        for name in COMPARED:
            assert getattr(message, name) == getattr(expected, name), name
        assert message.stored_at <= timezone.now()
    assert stored[2**64 - 1].is_sender
    assert stored[2**64 - 1].raw["content"]["msg"]["NewMsgId"] == 2**64 - 1


@pytest.mark.postgres
def test_a_page_is_one_copy_with_no_statement_per_letter(account, make_item):
    from django.test.utils import CaptureQueriesContext

    page = parse_sync_page({"list": [make_item() for _ in range(50)], "keyBuff": "next"})
    with account_lease(account) as lease, CaptureQueriesContext(connection) as queries:
        store_page(account, page, lease_token=lease, expected="")

    statements = [query["sql"] for query in queries.captured_queries]
    assert sum(sql.startswith('COPY "inbox_message"') for sql in statements) == 1
    assert not any(sql.startswith('INSERT INTO "inbox_message"') for sql in statements)
    assert Message.objects.count() == 50


# --- response JSON --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"ret": 200, "data": {"list": [{"NewMsgId": 18446744073709551615}], "x": "\\u4e2d"}}',
        b'{"a": 18446744073709551616}',  # past 64 bits: orjson would make it a float
        b'{"a": 123456789012345678901234567890}',
        b'{"a": -9223372036854775809}',  # below the signed range
        b'{"a": "\\ud800"}',  # a lone surrogate: orjson refuses it
        b'{"a": "12345678901234567890123 in a string"}',
    ],
    ids=["ids", "2**64", "30 digits", "-2**63-1", "surrogate", "digits in text"],
)
def test_response_json_reads_exactly_as_the_standard_library_does(body):
    parsed, expected = parse_json(body), json.loads(body)
    assert json.dumps(parsed) == json.dumps(expected)


def test_response_json_reads_nan_and_infinities_as_null_which_a_json_column_can_store():
    assert parse_json(b'{"a": NaN, "b": [Infinity, -Infinity, 1e400, 2.5]}') == {
        "a": None,
        "b": [None, None, None, 2.5],
    }


def test_response_json_refuses_what_the_standard_library_refuses():
    for body in (b"<html>maintenance</html>", b'{"a": 1', b"\xff\xfe"):
        with pytest.raises(ValueError):
            parse_json(body)


# --- benchmark_sync's raw-COPY baseline --------------------------------------------------------


@pytest.mark.postgres
def test_benchmark_prints_the_raw_copy_rate_and_the_engines_share_of_it(db):
    out = StringIO()
    call_command("benchmark_sync", "--pages", "2", "--sizes", "10,20", stdout=out)

    lines = out.getvalue().splitlines()
    header = lines.index("page size | COPY msg/s | engine ÷ COPY")
    rows = [line.split("|") for line in lines[header + 2 : header + 4]]
    assert [row[0].strip() for row in rows] == ["10", "20"]
    for _size, rate, share in rows:
        assert float(rate.replace(",", "")) > 0
        assert share.strip().endswith("%") and float(share.strip()[:-1]) > 0
    assert not Account.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'benchmark_copy_%'")
        assert cursor.fetchone() == (0,)


def test_benchmark_says_the_copy_baseline_needs_postgresql_elsewhere(db):
    if connection.vendor == "postgresql":
        pytest.skip("on PostgreSQL the baseline runs (see the test above)")
    out = StringIO()
    call_command("benchmark_sync", "--pages", "1", "--sizes", "5", stdout=out)

    assert "Raw COPY baseline: PostgreSQL only" in out.getvalue()
