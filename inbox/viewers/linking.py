"""Which viewer each session is with, kept in ViewerSession as sessions are created.

Sync calls link_sessions once per page with the page's new sessions (already inserted, so they
have their keys), in the page's transaction: two statements whatever the page's size, none when
it created no session. `rebuild_viewers` (the command) links what existed before, or anything a
failure left out; linking twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.db import connection
from django.utils import timezone

from inbox.bulk import bound_cursor
from inbox.models import Session
from inbox.viewers.models import Viewer, ViewerSession

REBUILD_BATCH = 5000


def link_sessions(sessions: Iterable[Session]) -> int:
    """Make sure each session's peer is a Viewer and the session is linked to it. Returns how
    many links were written."""
    pairs = sorted(
        (session.peer_username, session.pk)
        for session in sessions
        if session.peer_username and session.pk
    )
    if not pairs:
        return 0
    ensure_viewers({username for username, _ in pairs})
    if connection.vendor == "postgresql":
        return _link_postgresql(pairs)
    return _link_sqlite(pairs)


def _link_postgresql(pairs: list[tuple[str, int]]) -> int:
    """The links in one statement, its arrays bound in binary. A statement apart from
    ensure_viewers', not one CTE: a viewer another account's sync inserts at the same moment is
    waited for by ON CONFLICT, but only a second statement's snapshot sees it."""
    viewer = connection.ops.quote_name(Viewer._meta.db_table)
    link = connection.ops.quote_name(ViewerSession._meta.db_table)
    with bound_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {link} (session_id, viewer_id) SELECT p.session_id, v.id "
            "FROM unnest(%b::text[], %b::bigint[]) AS p(username, session_id) "
            f"JOIN {viewer} AS v ON v.username = p.username "
            "ON CONFLICT (session_id) DO NOTHING",
            [[username for username, _ in pairs], [pk for _, pk in pairs]],
        )
        return cursor.rowcount


def _link_sqlite(pairs: list[tuple[str, int]]) -> int:
    """The same, a prepared statement run per row (SQLite is in-process: no round trips)."""
    viewer = connection.ops.quote_name(Viewer._meta.db_table)
    link = connection.ops.quote_name(ViewerSession._meta.db_table)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {link} (session_id, viewer_id) SELECT %s, id FROM {viewer} "
            "WHERE username = %s ON CONFLICT (session_id) DO NOTHING",
            [(pk, username) for username, pk in pairs],
        )
        return cursor.rowcount


def ensure_viewers(usernames: Iterable[str]) -> None:
    """A Viewer for each of these user names that has none, in one statement. Names go in
    sorted, so two transactions that make the same new viewers take their row locks in the same
    order and cannot deadlock."""
    viewer = connection.ops.quote_name(Viewer._meta.db_table)
    columns = "(username, nickname, avatar, avatar_url_seen, avatar_error, created_at)"
    usernames = sorted(usernames)
    if connection.vendor == "postgresql":
        with bound_cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {viewer} {columns} SELECT name, '', '', '', '', %b "
                "FROM unnest(%b::text[]) AS name ON CONFLICT (username) DO NOTHING",
                [timezone.now(), usernames],
            )
        return
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {viewer} {columns} VALUES (%s, '', '', '', '', %s) "
            "ON CONFLICT (username) DO NOTHING",
            [(username, now) for username in usernames],
        )


def rebuild_viewers(
    *, batch_size: int = REBUILD_BATCH, on_batch: Callable[[int], None] | None = None
) -> int:
    """Link every session not linked yet, in primary-key batches (memory stays flat, and the
    inbox keeps working meanwhile). `on_batch(sessions)` follows each batch. Returns how many
    links it wrote."""
    unlinked = Session.objects.filter(viewer_link__isnull=True).exclude(peer_username="")
    linked, last_pk = 0, 0
    while True:
        batch = list(
            unlinked.filter(pk__gt=last_pk).order_by("pk").only("pk", "peer_username")[:batch_size]
        )
        if not batch:
            break
        last_pk = batch[-1].pk
        linked += link_sessions(batch)
        if on_batch:
            on_batch(len(batch))
    if linked and connection.vendor == "postgresql":
        # Statistics from before a backfill say the link table is empty: the panel's query was
        # then planned for hundreds of conversations a viewer and JIT-compiled (~100 ms, against
        # 0.3 ms planned from real counts). Autovacuum would get there, later.
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Viewer._meta.db_table}, {ViewerSession._meta.db_table}")
    return linked


def unlinked_count() -> int:
    return Session.objects.filter(viewer_link__isnull=True).exclude(peer_username="").count()
