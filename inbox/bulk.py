"""Set-based writes for a sync page: one statement per page and table, whatever the page's size.

On PostgreSQL, letters are COPY'd and sessions inserted, locked and updated through binary arrays
(`unnest`) on a server-binding cursor; Django's own cursors quote every value into the SQL text in
Python, which for a 1,000-letter page cost more than the statements themselves. SQLite, in-process
and without round trips, keeps simpler paths (see inbox.sync and save_sessions). Nothing here
decides what to write: inbox.sync does, in the page's transaction.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import connection, models
from django.db.models import JSONField
from django.utils import timezone

from inbox.fields import Uint64Field
from inbox.models import Message, Session

# Field types whose database value is the Python value itself (psycopg adapts it): the
# page-sized paths skip their per-value get_db_prep_save, a measurable cost at 1,000 rows.
PLAIN_FIELDS = frozenset(
    {
        models.CharField,
        models.TextField,
        models.IntegerField,
        models.PositiveIntegerField,
        models.BigIntegerField,
        models.BooleanField,
        models.DateTimeField,
        models.ForeignKey,
    }
)


@contextmanager
def bound_cursor(*, binary_results: bool = False) -> Iterator[Any]:
    """A PostgreSQL cursor that sends parameters apart from the SQL (server-side binding), so
    `%b` arrays go in binary. Django's own psycopg cursors quote every value into the SQL text in
    Python, which for a page's arrays costs several times the query. Wrapped as Django wraps its
    cursors, so query logging and counting see it, and its errors (COPY's too) are Django's.

    `binary_results` has rows come back in binary too: Django's timestamptz loader parses text
    in Python (~4 µs a value, a tenth of that in binary), which a sync page's thousand rows
    feel. Values are the same (aware datetimes in UTC); only for columns psycopg loads itself
    (not json, which Django leaves to its fields as text)."""
    import psycopg  # PostgreSQL only; SQLite installs need not load it

    raw = psycopg.Cursor(connection.connection)
    if binary_results:
        raw.format = psycopg.pq.Format.BINARY
    cursor = (
        connection.make_debug_cursor(raw)
        if connection.queries_logged
        else connection.make_cursor(raw)
    )
    try:
        with connection.wrap_database_errors:
            yield cursor
    finally:
        raw.close()


def locked_sessions(account_id: int, session_ids: list[str]) -> list[Session]:
    """The account's sessions with these msgSessionIds, locked FOR UPDATE: the queryset's
    rows, with the ids sent as one binary array rather than quoted into the SQL in Python.
    Its plan needs statistics that know the account's sessions (inbox.table_statistics)."""
    meta = Session._meta
    quote = connection.ops.quote_name
    fields = meta.concrete_fields
    with bound_cursor(binary_results=True) as cursor:
        cursor.execute(
            f"SELECT {', '.join(quote(field.column) for field in fields)} "
            f"FROM {quote(meta.db_table)} "
            f"WHERE {quote('account_id')} = %b AND {quote('msg_session_id')} = ANY(%b::text[]) "
            "FOR UPDATE",
            [account_id, session_ids],
        )
        rows = cursor.fetchall()
    names = [field.attname for field in fields]
    return [Session.from_db(connection.alias, names, row) for row in rows]


def insert_sessions(sessions: list[Session]) -> None:
    """bulk_create's rows, in one INSERT … SELECT FROM unnest(one binary array per column),
    setting the new primary keys. bulk_create quoted every value of every row into the SQL text
    in Python (~0.1 ms per session)."""
    meta = Session._meta
    quote = connection.ops.quote_name
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    columns = []
    for field in fields:
        values = [field.pre_save(session, add=True) for session in sessions]
        if type(field) not in PLAIN_FIELDS:
            values = [field.get_db_prep_save(value, connection) for value in values]
        columns.append(values)
    names = ", ".join(quote(field.column) for field in fields)
    arrays = ", ".join(f"%b::{field.cast_db_type(connection)}[]" for field in fields)
    with bound_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} ({names}) SELECT * FROM unnest({arrays}) "
            f"RETURNING {quote(meta.pk.column)}, {quote('msg_session_id')}",
            columns,
        )
        ids = {session_id: pk for pk, session_id in cursor.fetchall()}
    for session in sessions:
        session.pk = ids[session.msg_session_id]
        session._state.adding = False
        session._state.db = connection.alias


def save_sessions(sessions: list[Session], names: tuple[str, ...]) -> None:
    """Write these fields of these sessions in one statement. bulk_update's CASE WHEN per row
    and field cost ~2 ms of Python per session and made a 1,000-letter page slower than naive
    per-row saves. PostgreSQL gets one UPDATE … FROM unnest(arrays); SQLite (in-process, so no
    round trips to save) one prepared UPDATE run for every row with executemany."""
    if not sessions:
        return
    pk = Session._meta.pk
    fields = [Session._meta.get_field(name) for name in names]
    quote = connection.ops.quote_name
    table = quote(Session._meta.db_table)
    # psycopg adapts these values itself; sqlite3 would store an aware datetime as
    # "…+00:00", not in Django's format, and equal times would then compare unequal.
    plain = PLAIN_FIELDS if connection.vendor == "postgresql" else frozenset()
    prepare = [None if type(field) in plain else field.get_db_prep_save for field in fields]
    rows = [
        [
            session.pk,
            *(
                getattr(session, field.attname)
                if convert is None
                else convert(getattr(session, field.attname), connection)
                for field, convert in zip(fields, prepare, strict=True)
            ),
        ]
        for session in sessions
    ]
    if connection.vendor != "postgresql":
        assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
        with connection.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {table} SET {assignments} WHERE {quote(pk.column)} = %s",
                [[*values, session_pk] for session_pk, *values in rows],
            )
        return
    # One binary array per column: eight parameters however many sessions the page touched.
    columns = [pk, *fields]
    arrays = ", ".join(f"%b::{column.cast_db_type(connection)}[]" for column in columns)
    with bound_cursor() as cursor:
        assignments = ", ".join(
            f"{quote(field.column)} = v.{quote(field.column)}" for field in fields
        )
        cursor.execute(
            f"UPDATE {table} SET {assignments} FROM unnest({arrays}) "
            f"AS v({', '.join(quote(column.column) for column in columns)}) "
            f"WHERE {table}.{quote(pk.column)} = v.{quote(pk.column)}",
            [list(column) for column in zip(*rows, strict=True)],
        )


def copy_messages(account_id: int, rows: list[tuple[int, dict[str, Any]]]) -> list[int]:
    """COPY message rows, each (session id, its letter's field values), straight into the
    message table: the database's own bulk path, each row formatted by psycopg's C code, no model
    instance or SQL text per letter (bulk_create spent about 2 ms of Python per letter on
    those). The caller makes sure no row conflicts with a stored one.

    Returns the rows' primary keys, in order: they are drawn from the table's own sequence
    first (one statement, ascending, so ids follow the page's order as the table's defaults
    would), as COPY can return nothing."""
    columns = _message_columns(tuple(rows[0][1]))
    now = timezone.now()
    constants = [now if value is _NOW else value for value in columns.constants]
    with bound_cursor(binary_results=True) as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%b, 'id')) FROM generate_series(1, %b)",
            [Message._meta.db_table, len(rows)],
        )
        ids = sorted(pk for (pk,) in cursor.fetchall())
        with cursor.copy(columns.copy_sql) as copy:
            for pk, (session_id, values) in zip(ids, rows, strict=True):
                row = [pk, account_id, session_id]
                row += [
                    convert(values[name]) if convert else values[name]
                    for name, convert in columns.converters
                ]
                row += constants
                copy.write_row(row)
    return ids


# A page's NewMsgIds are looked up one probe of the unique (account_id, new_msg_id) index
# each, whatever the table's statistics say. Written as `account_id = X AND new_msg_id =
# ANY(ids)`, the planner, told by statistics from before a big import that the account has a
# handful of rows, scans all of the account's rows and filters them: a second a page at 400,000
# letters. A LATERAL subquery with LIMIT 1 (which keeps PostgreSQL from flattening it into a
# join) leaves it a nested loop of probes, and no other index leads with account_id.
_PROBE_LETTERS = (
    "SELECT row.new_msg_id, row.from_upstream FROM unnest(%b::bigint[]) AS k(new_msg_id) "
    "CROSS JOIN LATERAL (SELECT m.new_msg_id, m.raw IS NOT NULL AS from_upstream "
    "FROM {table} AS m WHERE m.account_id = %b AND m.new_msg_id = k.new_msg_id LIMIT 1) AS row"
)


def known_letters(account_id: int, new_msg_ids: list[int]) -> dict[int, bool]:
    """Which of these NewMsgIds the account's messages have: each → whether its row came from
    the upstream (False: a reply composed here, whose echo this is). One statement, the ids
    bound as one binary array, one index probe each (_PROBE_LETTERS), rows read in binary."""
    field = Message._meta.get_field("new_msg_id")
    with bound_cursor(binary_results=True) as cursor:
        cursor.execute(
            _PROBE_LETTERS.format(table=Message._meta.db_table),
            [sorted({field.get_prep_value(value) for value in new_msg_ids}), account_id],
        )
        return {
            field.from_db_value(stored, None, connection): from_upstream
            for stored, from_upstream in cursor.fetchall()
        }


@dataclass(frozen=True, slots=True)
class _MessageColumns:
    """How a letter becomes a message row on PostgreSQL: the letter's own fields with their
    converters (None: as is), then every other column with its default, and the COPY."""

    converters: tuple[tuple[str, Callable[[Any], Any] | None], ...]
    constants: tuple[Any, ...]
    copy_sql: str


_NOW = object()  # auto_now / auto_now_add columns: the page's time


@functools.cache
def _message_columns(names: tuple[str, ...]) -> _MessageColumns:
    meta = Message._meta
    quote = connection.ops.quote_name
    letter_fields = [meta.get_field(name) for name in names]
    fixed = [meta.get_field("account"), meta.get_field("session")]
    # Columns the letter does not set get their model default, as bulk_create would give them:
    # fields that later migrations add are filled without touching this code.
    other_fields = [
        field
        for field in meta.concrete_fields
        if not field.primary_key and field not in fixed and field not in letter_fields
    ]
    constants = []
    for field in other_fields:
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            constants.append(_NOW)
        elif isinstance(field, JSONField):
            constants.append(json_text(field.get_default()))
        else:
            constants.append(field.get_db_prep_save(field.get_default(), connection))
    names_sql = ", ".join(
        quote(field.column) for field in [meta.pk, *fixed, *letter_fields, *other_fields]
    )
    return _MessageColumns(
        converters=tuple((field.attname, _converter(field)) for field in letter_fields),
        constants=tuple(constants),
        # COPY's text format: JSON goes in as its text, which is what orjson writes.
        copy_sql=f"COPY {quote(meta.db_table)} ({names_sql}) FROM STDIN",
    )


def _converter(field) -> Callable[[Any], Any] | None:
    """A letter value → what the database stores; None when it is the value itself."""
    if isinstance(field, Uint64Field):
        return field.get_prep_value
    if isinstance(field, JSONField):
        return json_text
    if type(field) in PLAIN_FIELDS:
        return None
    return functools.partial(field.get_db_prep_save, connection=connection)


def json_text(value: Any) -> str | None:
    """JSON text for a jsonb column. orjson is ~20 times faster than json and writes NaN as
    null (PostgreSQL refuses NaN); integers past 64 bits, which it cannot write, go to json."""
    if value is None:
        return None
    try:
        return orjson.dumps(value).decode()
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value)
