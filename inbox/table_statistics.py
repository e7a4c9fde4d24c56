"""Planner statistics kept current through big imports, on PostgreSQL.

A history backfill can grow the session and message tables several times over between two
autovacuum analyses (or with autovacuum off, as on some managed and CI databases): the planner
then believes a new account has a handful of sessions and reads a sync page's 1,000 sessions by
scanning all of the account's rows once per page (`bulk.locked_sessions`), a cost that grows
with the backfill. Sync calls `refresh_if_stale()` after each page: one read of the tables'
change counters, and an ANALYZE of a table only when the rows changed since its last analysis
pass STALE_ROWS plus STALE_SHARE of its size (autovacuum's own rule with a larger floor), so a
backfill analyses a few times, each time the table has grown by a fifth, and a steady inbox
about as often as autovacuum would. Workers of other accounts that find the same table stale at
once do not queue behind one another's ANALYZE (it locks the table against a second one): an
advisory lock lets one of them do it, and the others go on.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, connection, transaction

from inbox.models import Message, Session

log = logging.getLogger(__name__)

TABLES = (Session._meta.db_table, Message._meta.db_table)
STALE_ROWS = 1000
STALE_SHARE = 0.2
LOCK_SPACE = 0x46494E44  # advisory locks' first key: this module's ("FIND")


def refresh_if_stale(tables: tuple[str, ...] = TABLES) -> list[str]:
    """ANALYZE those of `tables` whose statistics are stale; returns the names of those it
    analysed. Outside a transaction only (an ANALYZE holds its locks to the end of the
    transaction: never inside a sync page's). A failure (a database role that does not own the
    tables may not analyse them) is logged, never raised: statistics are an optimisation."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return []
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT s.relname FROM pg_stat_user_tables AS s "
                "JOIN pg_class AS c ON c.oid = s.relid "
                "WHERE s.relname = ANY(%s) "
                "AND s.n_mod_since_analyze > %s + %s * GREATEST(c.reltuples, 0) "
                "ORDER BY s.relname",
                [list(tables), STALE_ROWS, STALE_SHARE],
            )
            stale = [name for (name,) in cursor.fetchall()]
        analysed = [name for name in stale if _analyze_unless_busy(name)]
    except DatabaseError as exc:
        log.warning("could not refresh planner statistics: %s", exc)
        return []
    if analysed:
        log.info("analysed %s: their statistics predated most of their rows", ", ".join(analysed))
    return analysed


def _analyze_unless_busy(table: str) -> bool:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))", [LOCK_SPACE, table])
        (locked,) = cursor.fetchone()
        if locked:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
        return locked
