"""The report facts' rows as inbox.reports.facts folds them, and their reads and writes: plain
objects rather than model instances (a sync page reads and writes hundreds), each kind read or
written in one statement whatever the count, with binary arrays on PostgreSQL; SQLite, which runs
in-process, gets prepared statements run per row."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, models

from inbox import bulk
from inbox.reports.models import Episode, LetterHour, ReplyFact, TimelineState


@dataclass(slots=True, eq=False)
class EpisodeRow:
    """An Episode as the fold keeps it: the model's columns on a plain object (a sync page
    reads and writes hundreds; a model instance costs ten times as much to make). `pk` is None
    until insert_episodes gives it one."""

    session_id: int
    account_id: int
    opened_at: datetime
    pk: int | None = None
    first_letter_at: datetime | None = None
    first_response_at: datetime | None = None
    first_responder_id: int | None = None
    resolved_at: datetime | None = None
    resolver_id: int | None = None
    assignee_id: int | None = None
    incoming: int = 0
    replies: int = 0
    awaiting_since: datetime | None = None


# Every column of an EpisodeRow but its key, in the order insert_episodes writes them.
EPISODE_COLUMNS = (
    "session_id",
    "account_id",
    "opened_at",
    "first_letter_at",
    "first_response_at",
    "first_responder_id",
    "resolved_at",
    "resolver_id",
    "assignee_id",
    "incoming",
    "replies",
    "awaiting_since",
)


@dataclass(slots=True)
class ReplyRow:
    """A ReplyFact to write (a plain object: a page can make hundreds)."""

    message_id: int
    session_id: int
    account_id: int
    episode: EpisodeRow | None
    responder_id: int | None
    sent_at: datetime
    waited_from: datetime | None


def timeline_states(
    session_ids: list[int],
) -> dict[int, tuple[tuple[datetime, int], EpisodeRow | None]]:
    """Each folded session's last key and latest episode, as plain rows in one query."""
    if connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        columns = ", ".join(f"e.{quote(name)}" for name in EPISODE_COLUMNS)
        with bulk.bound_cursor(binary_results=True) as cursor:
            cursor.execute(
                f"SELECT s.session_id, s.last_at, s.last_rank, e.id, {columns} "
                f"FROM {quote(TimelineState._meta.db_table)} AS s "
                f"LEFT JOIN {quote(Episode._meta.db_table)} AS e ON e.id = s.episode_id "
                "WHERE s.session_id = ANY(%b::bigint[])",
                [session_ids],
            )
            rows = cursor.fetchall()
    else:
        rows = TimelineState.objects.filter(session_id__in=session_ids).values_list(
            "session_id",
            "last_at",
            "last_rank",
            "episode_id",
            *(f"episode__{Episode._meta.get_field(name).name}" for name in EPISODE_COLUMNS),
        )
    states = {}
    for session_id, last_at, last_rank, episode_id, *values in rows:
        row = None
        if episode_id is not None:
            row = EpisodeRow(**dict(zip(EPISODE_COLUMNS, values, strict=True)), pk=episode_id)
        states[session_id] = ((last_at, last_rank), row)
    return states


def insert_episodes(episodes: list[EpisodeRow]) -> None:
    """Insert these new episodes and give each its key: one INSERT … SELECT FROM unnest(binary
    arrays) RETURNING on PostgreSQL (rows come back in the arrays' order, as bulk_create relies
    on too); bulk_create on SQLite."""
    if not episodes:
        return
    if connection.vendor != "postgresql":
        made = Episode.objects.bulk_create(
            [Episode(**{name: getattr(row, name) for name in EPISODE_COLUMNS}) for row in episodes]
        )
        for row, episode in zip(episodes, made, strict=True):
            row.pk = episode.pk
        return
    quote = connection.ops.quote_name
    types = [
        "timestamptz"
        if isinstance(Episode._meta.get_field(name), models.DateTimeField)
        else "bigint"
        for name in EPISODE_COLUMNS
    ]
    with bulk.bound_cursor(binary_results=True) as cursor:
        cursor.execute(
            f"INSERT INTO {quote(Episode._meta.db_table)} "
            f"({', '.join(quote(name) for name in EPISODE_COLUMNS)}) "
            f"SELECT * FROM unnest({', '.join(f'%b::{kind}[]' for kind in types)}) RETURNING id",
            [[getattr(row, name) for row in episodes] for name in EPISODE_COLUMNS],
        )
        for row, (pk,) in zip(episodes, cursor.fetchall(), strict=True):
            row.pk = pk


def insert_replies(replies: list[ReplyRow]) -> None:
    if not replies:
        return
    rows = [
        (
            reply.message_id,
            reply.session_id,
            reply.account_id,
            reply.episode.pk if reply.episode else None,
            reply.responder_id,
            reply.sent_at,
            reply.waited_from,
        )
        for reply in replies
    ]
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(ReplyFact._meta.db_table)
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(
                f"COPY {table} (message_id, session_id, account_id, episode_id, responder_id, "
                "sent_at, waited_from) FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    ReplyFact.objects.bulk_create(
        [
            ReplyFact(
                message_id=row[0],
                session_id=row[1],
                account_id=row[2],
                episode_id=row[3],
                responder_id=row[4],
                sent_at=row[5],
                waited_from=row[6],
            )
            for row in rows
        ]
    )


def upsert_states(rows: list[tuple]) -> None:
    """(session, last_at, last_rank, episode) per session: insert or replace."""
    if not rows:
        return
    table = connection.ops.quote_name(TimelineState._meta.db_table)
    update = (
        "ON CONFLICT (session_id) DO UPDATE SET last_at = excluded.last_at, "
        "last_rank = excluded.last_rank, episode_id = excluded.episode_id"
    )
    if connection.vendor == "postgresql":
        with bulk.bound_cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (session_id, last_at, last_rank, episode_id) "
                "SELECT * FROM unnest(%b::bigint[], %b::timestamptz[], %b::smallint[], "
                f"%b::bigint[]) {update}",
                [list(column) for column in zip(*rows, strict=True)],
            )
        return
    with connection.cursor() as cursor:
        adapt = connection.ops.adapt_datetimefield_value
        cursor.executemany(
            f"INSERT INTO {table} (session_id, last_at, last_rank, episode_id) "
            f"VALUES (%s, %s, %s, %s) {update}",
            [(session, adapt(at), rank, episode) for session, at, rank, episode in rows],
        )


EPISODE_FIELDS = [
    "first_letter_at",
    "first_response_at",
    "first_responder",
    "resolved_at",
    "resolver",
    "assignee",
    "incoming",
    "replies",
    "awaiting_since",
]


def update_episodes(episodes: list[EpisodeRow]) -> None:
    """One UPDATE … FROM unnest(binary arrays) on PostgreSQL; on SQLite (in-process) one prepared
    UPDATE run per episode. bulk_update's CASE per row and field costs milliseconds a row."""
    if not episodes:
        return
    fields = [Episode._meta.get_field(name) for name in EPISODE_FIELDS]
    quote = connection.ops.quote_name
    table = quote(Episode._meta.db_table)
    if connection.vendor == "postgresql":
        columns = [quote(field.column) for field in fields]
        types = [
            "timestamptz" if isinstance(field, models.DateTimeField) else "bigint"
            for field in fields
        ]
        arrays = [[episode.pk for episode in episodes]] + [
            [getattr(episode, field.attname) for episode in episodes] for field in fields
        ]
        with bulk.bound_cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS e SET "
                + ", ".join(f"{column} = v.{column}" for column in columns)
                + " FROM unnest(%b::bigint[], "
                + ", ".join(f"%b::{kind}[]" for kind in types)
                + f") AS v(id, {', '.join(columns)}) WHERE e.id = v.id",
                arrays,
            )
        return
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    rows = [
        [field.get_db_prep_save(getattr(episode, field.attname), connection) for field in fields]
        + [episode.pk]
        for episode in episodes
    ]
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {table} SET {assignments} WHERE id = %s", rows)


def add_to_hours(hours: Counter) -> None:
    """Add these (account, hour, column) deltas to LetterHour in one upsert."""
    rows: dict[tuple[int, datetime], list[int]] = defaultdict(lambda: [0, 0])
    for (account_id, hour, column), delta in hours.items():
        if delta:
            rows[(account_id, hour)][0 if column == "incoming" else 1] += delta
    rows = {key: value for key, value in rows.items() if any(value)}
    if not rows:
        return
    quote = connection.ops.quote_name
    table = quote(LetterHour._meta.db_table)
    placeholders = ", ".join(["(%s, %s, %s, %s)"] * len(rows))
    params: list = []
    for (account_id, hour), (incoming, replies) in sorted(rows.items()):
        params += [account_id, connection.ops.adapt_datetimefield_value(hour), incoming, replies]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (account_id, hour, incoming, replies) VALUES {placeholders} "
            f"ON CONFLICT (account_id, hour) DO UPDATE SET "
            f"incoming = {table}.incoming + excluded.incoming, "
            f"replies = {table}.replies + excluded.replies",
            params,
        )
