"""Throughput of the sync engine (inbox.sync.store_page) on the configured database.

Synthetic pages shaped like the service's example (text in Chinese, images with their CDN XML,
app messages; both directions; many sessions, some new on each page, some seen before) are parsed
up front and stored through the real store_page, under a real lease, for a throwaway account that
is deleted afterwards. The HTTP client is left out: this measures the engine, not the network.

For each page size it reports messages stored per second, queries per page, the same pages
re-delivered (nothing may be stored twice), and a naive baseline timed in the same run: one
Session.get_or_create and one Message.objects.create per letter, in one transaction per page.

On PostgreSQL it also times the database's own limit in the same run: raw `COPY` of the very rows
the engine stored (read back with `COPY … TO STDOUT`, so encoding is not timed) into a fresh table
made `LIKE inbox_message INCLUDING ALL` (same columns, defaults and indexes, whatever the
migrations have made them), one page per transaction, and prints the engine's share of that rate.
Each engine page is followed at once by the COPY of its rows, so both see the machine in the
same state: on a shared machine, a baseline timed a minute later moved the share by ±5 points.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import Account
from accounts.sandbox import APP_XML, IMAGE_XML, letter_item
from inbox.models import Message, Session
from inbox.payloads import SyncPage, parse_sync_page
from inbox.sync import account_lease, message_from_letter, store_page

TEXTS = [
    "你好，请问这款保温杯还有货吗？",
    "老板，我昨天买的衣服尺码不对，可以换吗？\n订单号 20240124-8831",
    "直播间说的优惠券在哪里领？",
    "收到货了，质量很好 👍",
    "Hi, do you ship to Singapore?",
    "物流好像一直没有更新……麻烦帮忙查一下，谢谢！",
]
SHOP = "v2_060000231003b20faec8c7e28811c4d5cc0ded37b0779c48c759a7446a87688c2774e5300c32@finder"


@dataclass
class Measure:
    seconds: float = 0.0
    items: int = 0
    new_rows: int = 0
    queries: int = 0
    # Raw COPY of the rows the engine stored (PostgreSQL only).
    copy: Measure | None = field(default=None, repr=False)

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0


class Command(BaseCommand):
    help = (
        "Measure sync throughput (messages/second) and queries per page for pages of 10, 100 "
        "and 1,000 letters on the configured database, against a naive per-row baseline. "
        "Writes to a throwaway account that it deletes afterwards."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--pages", type=int, default=5, help="Timed pages per page size (default 5)."
        )
        parser.add_argument(
            "--sizes",
            default="10,100,1000",
            help="Comma-separated page sizes (default 10,100,1000).",
        )
        parser.add_argument("--seed", type=int, default=20240124)

    def handle(self, *args, pages: int, sizes: str, seed: int, **options) -> None:
        try:
            page_sizes = [int(size) for size in sizes.split(",")]
        except ValueError:
            raise CommandError("--sizes must be comma-separated integers") from None
        if pages < 1 or any(size < 1 for size in page_sizes):
            raise CommandError("--pages and every size must be at least 1")

        self.stdout.write(f"Sync engine benchmark on {_describe_database()}")
        self.stdout.write(
            f"{pages} timed page(s) per size, plus one more per size whose queries are counted "
            "with CaptureQueriesContext (timing runs without query capture)."
        )
        header = (
            f"{'page':>5} | {'engine':>8} {'queries':>8} | {'re-delivery':>11} {'queries':>8} "
            f"{'new':>4} | {'naive':>7} {'queries':>8} | {'engine':>7}"
        )
        self.stdout.write(header)
        self.stdout.write(
            f"{'size':>5} | {'msg/s':>8} {'/page':>8} | {'msg/s':>11} {'/page':>8} "
            f"{'rows':>4} | {'msg/s':>7} {'/page':>8} | {'÷naive':>7}"
        )
        self.stdout.write("-" * len(header))
        rng = random.Random(seed)
        engines = []
        for size in page_sizes:
            engine, redelivery, naive = self._run(size, pages, rng)
            engines.append((size, engine))
            self.stdout.write(
                f"{size:>5} | {engine.rate:>8,.0f} {engine.queries:>8} | "
                f"{redelivery.rate:>11,.0f} {redelivery.queries:>8} {redelivery.new_rows:>4} | "
                f"{naive.rate:>7,.0f} {naive.queries:>8} | "
                f"{engine.rate / naive.rate if naive.rate else 0:>6.1f}×"
            )
        self._report_copy(engines)

    def _report_copy(self, engines: list[tuple[int, Measure]]) -> None:
        self.stdout.write("")
        if connection.vendor != "postgresql":
            self.stdout.write("Raw COPY baseline: PostgreSQL only (this database has no COPY).")
            return
        self.stdout.write(
            "The database's limit: raw COPY of the same rows into a table LIKE inbox_message "
            "INCLUDING ALL (same columns and indexes), one page per transaction, each right "
            "after the engine stored it."
        )
        header = f"{'page size':>9} | {'COPY msg/s':>10} | {'engine ÷ COPY':>13}"
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for size, engine in engines:
            copy = engine.copy
            share = engine.rate / copy.rate if copy and copy.rate else 0
            self.stdout.write(f"{size:>9} | {copy.rate:>10,.0f} | {share:>12.1%}")

    def _run(self, size: int, pages: int, rng: random.Random) -> tuple[Measure, ...]:
        # One more page than timed: its queries are counted, separately from the timing,
        # because capturing the SQL of a 1,000-row INSERT costs time the engine does not.
        batch = _synthetic_pages(size, pages + 1, rng)
        engine_account = _throwaway_account("engine")
        naive_account = _throwaway_account("naive")
        try:
            with _raw_copy(engine_account) as copy:
                engine = _store_all(engine_account, batch, after_page=copy.page)
            engine.copy = copy.measure
            redelivery = _store_all(engine_account, batch)
            naive = _naive_all(naive_account, batch)
        finally:
            engine_account.delete()
            naive_account.delete()
        if redelivery.new_rows:
            raise CommandError(f"re-delivery stored {redelivery.new_rows} rows twice")
        return engine, redelivery, naive


def _describe_database() -> str:
    if connection.vendor == "sqlite":
        return f"SQLite {sqlite3.sqlite_version} ({connection.settings_dict['ENGINE']})"
    connection.ensure_connection()
    version = getattr(connection, "pg_version", None)
    if connection.vendor == "postgresql" and version:
        return f"PostgreSQL {version // 10000}.{version % 10000}"
    return connection.display_name


def _throwaway_account(role: str) -> Account:
    name = f"benchmark-{role}-{uuid.uuid4().hex[:12]}"
    return Account.objects.create(name=f"{name} (temporary)", app_id=name, token="benchmark")


def _store_all(
    account: Account, batch: list[SyncPage], *, after_page: Callable[[], None] | None = None
) -> Measure:
    measure = Measure()
    *timed, counted = batch
    with account_lease(account) as lease:
        for page in timed:
            expected = _cursor(account)
            started = time.perf_counter()
            result = store_page(account, page, lease_token=lease, expected=expected)
            measure.seconds += time.perf_counter() - started
            measure.items += page.item_count
            measure.new_rows += result.new_messages
            if after_page:
                after_page()
        expected = _cursor(account)
        with CaptureQueriesContext(connection) as queries:
            result = store_page(account, counted, lease_token=lease, expected=expected)
        measure.new_rows += result.new_messages
        measure.queries = len(queries)
    return measure


def _naive_all(account: Account, batch: list[SyncPage]) -> Measure:
    measure = Measure()
    *timed, counted = batch
    for page in timed:
        started = time.perf_counter()
        _naive_store(account, page)
        measure.seconds += time.perf_counter() - started
        measure.items += page.item_count
    with CaptureQueriesContext(connection) as queries:
        _naive_store(account, counted)
    measure.queries = len(queries)
    return measure


def _naive_store(account: Account, page: SyncPage) -> None:
    with transaction.atomic():
        for letter in page.letters:
            session, _ = Session.objects.get_or_create(
                account=account,
                msg_session_id=letter.msg_session_id,
                defaults={
                    "peer_username": letter.peer_username,
                    "my_username": letter.my_username,
                    "last_message_at": letter.created_at,
                },
            )
            message_from_letter(account, session, letter).save()


class _RawCopy:
    """The raw COPY baseline on PostgreSQL: `page()` copies the rows the engine stored since
    the last call into a table with the message table's columns and indexes, in one timed
    transaction. Elsewhere `page()` does nothing and `measure` stays None."""

    def __init__(self, account: Account, table: str | None):
        self.account = account
        self.table = table
        self.measure = Measure() if table else None
        self.last_id = 0
        self.columns = ""

    def page(self) -> None:
        if not self.table:
            return
        chunk, self.last_id = _rows_after(self.account, self.columns, self.last_id)
        statement = f"COPY {self.table} ({self.columns}) FROM STDIN"
        started = time.perf_counter()
        with (
            transaction.atomic(),
            connection.connection.cursor() as cursor,
            cursor.copy(statement) as copy,
        ):
            copy.write(chunk)
        self.measure.seconds += time.perf_counter() - started
        self.measure.items += chunk.count(b"\n")


@contextmanager
def _raw_copy(account: Account) -> Iterator[_RawCopy]:
    """A _RawCopy for `account`'s new rows, its table dropped afterwards."""
    if connection.vendor != "postgresql":
        yield _RawCopy(account, None)
        return
    table = Message._meta.db_table
    copy = _RawCopy(account, f"benchmark_copy_{uuid.uuid4().hex[:12]}")
    with connection.cursor() as cursor:
        # Every column the database lets COPY write except the id, which the table assigns.
        # Read at run time: later migrations count too.
        cursor.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped AND attgenerated = '' AND attname <> 'id' ORDER BY attnum",
            [table],
        )
        copy.columns = ", ".join(connection.ops.quote_name(name) for (name,) in cursor.fetchall())
        cursor.execute(f"CREATE TABLE {copy.table} (LIKE {table} INCLUDING ALL)")
    try:
        yield copy
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {copy.table}")


def _rows_after(account: Account, columns: str, last_id: int) -> tuple[bytes, int]:
    """The account's letters after `last_id` as COPY text, encoded by the server before any
    clock starts, and the newest id among them."""
    table = Message._meta.db_table
    buffer = bytearray()
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor
        where = f"account_id = {int(account.pk)} AND id > {int(last_id)}"
        with cursor.copy(
            f"COPY (SELECT {columns} FROM {table} WHERE {where} ORDER BY id) TO STDOUT"
        ) as copy:
            for data in copy:
                buffer += data
        django_cursor.execute(f"SELECT COALESCE(MAX(id), %s) FROM {table} WHERE {where}", [last_id])
        (newest,) = django_cursor.fetchone()
    return bytes(buffer), newest


def _cursor(account: Account) -> str:
    return Account.objects.values_list("key_buff", flat=True).get(pk=account.pk)


def _synthetic_pages(size: int, count: int, rng: random.Random) -> list[SyncPage]:
    """`count` parsed pages of `size` letters over many sessions: a tenth from new peers, the
    rest from a pool as large as a page, so later pages add to sessions earlier ones created."""
    pages, seen_ids, seq = [], set(), 0
    peers = [_peer(f"{size}-pool-{n}") for n in range(size)]
    for page_number in range(count):
        items = []
        for _ in range(size):
            seq += 1
            new_msg_id = rng.randrange(10**17, 2**64)
            while new_msg_id in seen_ids:
                new_msg_id = rng.randrange(10**17, 2**64)
            seen_ids.add(new_msg_id)
            # A tenth of each page is viewers writing for the first time: new sessions.
            new_peer = len(items) < max(1, size // 10)
            peer = _peer(f"{size}-{seq}") if new_peer else rng.choice(peers)
            items.append(_item(peer, seq, new_msg_id, rng))
        pages.append(parse_sync_page({"list": items, "keyBuff": f"bench:{size}:{page_number}"}))
    return pages


def _peer(seed: str) -> str:
    return f"v2_0600002310{hashlib.sha256(seed.encode()).hexdigest()[:66]}@finder"


def _item(peer: str, seq: int, new_msg_id: int, rng: random.Random) -> dict[str, Any]:
    is_sender = rng.random() < 0.3
    kind = rng.random()
    if kind < 0.1:
        msg_type = 3
        md5 = hashlib.md5(str(new_msg_id).encode()).hexdigest()
        content = IMAGE_XML.format(
            key=md5,
            url=f"3057020100044b3049{md5}",
            width=120,
            height=rng.choice([90, 120, 160]),
            thumb_length=1315,
            length=22001,
            hd_length=1096,
            md5=md5,
        )
    elif kind < 0.14:
        msg_type = 49
        content = APP_XML.format(
            title="春季新品 Spring collection",
            des="",
            type=51,
            url="https://channels.weixin.qq.com/",
        )
    else:
        msg_type = 1
        content = rng.choice(TEXTS)
    return letter_item(
        seq=seq,
        new_msg_id=new_msg_id,
        me=SHOP,
        peer=peer,
        is_sender=is_sender,
        msg_type=msg_type,
        content=content,
        create_time=1706084719 + seq,
        msg_session_id=hashlib.sha256(peer.encode()).hexdigest() + "@findermsg",
        msg_source="<msgsource><bizflag>0</bizflag></msgsource>",
    )
