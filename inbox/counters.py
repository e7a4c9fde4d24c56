"""The sidebar's and the tabs' counts, maintained instead of recounted.

inbox.SessionCounter holds, per (account, status, assignee, unread or not), how many sessions
there are and how many unread letters they hold. Database triggers on inbox_session keep it in
step: every INSERT, UPDATE and DELETE of sessions adds its difference to the counter rows, in the
same transaction as the change.

Why triggers rather than calls in the service functions: the counts move with every write to a
session's account, status, assignee or unread count, and those writes come from many places
(sync's one-statement page update, mark_read, status and assignment changes, the snooze sweep,
replies, admin edits, deleting a user, which unassigns their sessions, deleting an account,
which deletes its sessions). A trigger sees each row's true old and new values under the row's
lock, so two requests reading the same thread at once cannot both subtract its unread letters,
and no future write path can forget the counters. On PostgreSQL the trigger is per statement
with transition tables: one aggregated upsert per statement, however many rows it changed, so a
1,000-letter sync page costs one extra statement. SQLite has only per-row triggers; they are
cheap in-process.

Lock order: each statement's upsert visits its counter rows sorted by key, so two statements
that move the same counters take their row locks in the same order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Count, IntegerField, Q, Sum, Value
from django.db.models.functions import Coalesce

from inbox import session_names
from inbox.models import Session, SessionCounter

TABLE = SessionCounter._meta.db_table
KEY = "account_id, status, assignee_id, has_unread"

# --- the triggers ---------------------------------------------------------------------------

_PG_DELTA = """
    INSERT INTO {table} AS c ({key}, sessions, unread)
    SELECT account_id, status, assignee_id, has_unread, SUM(sessions), SUM(unread)
    FROM ({rows}) AS delta
    GROUP BY account_id, status, assignee_id, has_unread
    HAVING SUM(sessions) <> 0 OR SUM(unread) <> 0
    ORDER BY account_id, status, assignee_id, has_unread
    ON CONFLICT ({key}) DO UPDATE
    SET sessions = c.sessions + excluded.sessions, unread = c.unread + excluded.unread;
"""
_PG_ROWS = (
    "SELECT account_id, status, COALESCE(assignee_id, 0) AS assignee_id, "
    "unread_count > 0 AS has_unread, {sign}1 AS sessions, {sign}unread_count AS unread "
    "FROM {rows}"
)
_ADDED = _PG_ROWS.format(sign="", rows="new_rows")
_REMOVED = _PG_ROWS.format(sign="-", rows="old_rows")

POSTGRESQL_INSTALL = [
    f"""
    CREATE FUNCTION inbox_session_count() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'INSERT' THEN
        {_PG_DELTA.format(table=TABLE, key=KEY, rows=_ADDED)}
      ELSIF TG_OP = 'DELETE' THEN
        {_PG_DELTA.format(table=TABLE, key=KEY, rows=_REMOVED)}
      ELSE
        {_PG_DELTA.format(table=TABLE, key=KEY, rows=f"{_ADDED} UNION ALL {_REMOVED}")}
      END IF;
      RETURN NULL;
    END $$;
    """,
    """CREATE TRIGGER inbox_session_count_insert AFTER INSERT ON inbox_session
       REFERENCING NEW TABLE AS new_rows
       FOR EACH STATEMENT EXECUTE FUNCTION inbox_session_count();""",
    """CREATE TRIGGER inbox_session_count_update AFTER UPDATE ON inbox_session
       REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
       FOR EACH STATEMENT EXECUTE FUNCTION inbox_session_count();""",
    """CREATE TRIGGER inbox_session_count_delete AFTER DELETE ON inbox_session
       REFERENCING OLD TABLE AS old_rows
       FOR EACH STATEMENT EXECUTE FUNCTION inbox_session_count();""",
]
POSTGRESQL_UNINSTALL = [
    "DROP TRIGGER IF EXISTS inbox_session_count_insert ON inbox_session;",
    "DROP TRIGGER IF EXISTS inbox_session_count_update ON inbox_session;",
    "DROP TRIGGER IF EXISTS inbox_session_count_delete ON inbox_session;",
    "DROP FUNCTION IF EXISTS inbox_session_count();",
]

_SQLITE_ADD = f"""
    INSERT INTO {TABLE} ({KEY}, sessions, unread)
    VALUES (NEW.account_id, NEW.status, COALESCE(NEW.assignee_id, 0), NEW.unread_count > 0,
            1, NEW.unread_count)
    ON CONFLICT ({KEY}) DO UPDATE
    SET sessions = sessions + excluded.sessions, unread = unread + excluded.unread;
"""
# A removed session's row exists (its insert made it); a flush that emptied the counters first
# finds none, and leaves none behind.
_SQLITE_REMOVE = f"""
    UPDATE {TABLE} SET sessions = sessions - 1, unread = unread - OLD.unread_count
    WHERE account_id = OLD.account_id AND status = OLD.status
      AND assignee_id = COALESCE(OLD.assignee_id, 0) AND has_unread = (OLD.unread_count > 0);
"""
SQLITE_INSTALL = [
    f"CREATE TRIGGER inbox_session_count_insert AFTER INSERT ON inbox_session "
    f"BEGIN {_SQLITE_ADD} END;",
    f"CREATE TRIGGER inbox_session_count_update "
    f"AFTER UPDATE OF account_id, status, assignee_id, unread_count ON inbox_session "
    f"BEGIN {_SQLITE_REMOVE} {_SQLITE_ADD} END;",
    f"CREATE TRIGGER inbox_session_count_delete AFTER DELETE ON inbox_session "
    f"BEGIN {_SQLITE_REMOVE} END;",
]
SQLITE_UNINSTALL = [
    "DROP TRIGGER IF EXISTS inbox_session_count_insert;",
    "DROP TRIGGER IF EXISTS inbox_session_count_update;",
    "DROP TRIGGER IF EXISTS inbox_session_count_delete;",
]


def _statements(vendor: str, *, install: bool) -> list[str]:
    if vendor == "postgresql":
        return POSTGRESQL_INSTALL if install else POSTGRESQL_UNINSTALL
    if vendor == "sqlite":
        return SQLITE_INSTALL if install else SQLITE_UNINSTALL
    raise NotImplementedError(f"session counters have no triggers for {vendor}")


def install_triggers(apps, schema_editor) -> None:
    """Migration step: create the triggers and count what is there already."""
    for statement in _statements(schema_editor.connection.vendor, install=True):
        schema_editor.execute(statement, params=None)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE}")
        cursor.execute(_RECOUNT_SQL.format(where=""))


def uninstall_triggers(apps, schema_editor) -> None:
    for statement in _statements(schema_editor.connection.vendor, install=False):
        schema_editor.execute(statement, params=None)


TRIGGERS = (
    "inbox_session_count_insert",
    "inbox_session_count_update",
    "inbox_session_count_delete",
)


def ensure_triggers(sender=None, *, using: str = "default", **kwargs) -> None:
    """After every migrate (post_migrate): put the triggers back if a migration lost them, and
    recount. SQLite alters a column by copying the table to a new one, which drops the old
    table's triggers; any later migration that alters inbox_session that way would otherwise
    leave the counters unmaintained without a word."""
    from django.db import connections

    # The session table's other triggers, which such a copy would drop as well.
    session_names.ensure_triggers(using=using)
    db = connections[using]
    if db.vendor not in ("postgresql", "sqlite"):
        return
    with db.cursor() as cursor:
        if db.vendor == "sqlite":
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
                [Session._meta.db_table],
            )
        else:
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass",
                [Session._meta.db_table],
            )
        present = {row[0] for row in cursor.fetchall()}
    if present.issuperset(TRIGGERS):
        return
    with transaction.atomic(using=using), db.cursor() as cursor:
        for statement in _statements(db.vendor, install=False):
            cursor.execute(statement)
        for statement in _statements(db.vendor, install=True):
            cursor.execute(statement)
        cursor.execute(f"DELETE FROM {TABLE}")
        cursor.execute(_RECOUNT_SQL.format(where=""))


# --- recounting -----------------------------------------------------------------------------

_RECOUNT_SQL = f"""
    INSERT INTO {TABLE} ({KEY}, sessions, unread)
    SELECT account_id, status, COALESCE(assignee_id, 0), unread_count > 0, COUNT(*),
           SUM(unread_count)
    FROM inbox_session {{where}}
    GROUP BY account_id, status, COALESCE(assignee_id, 0), unread_count > 0
"""


@dataclass(frozen=True)
class Rebuilt:
    account_id: int
    rows: int
    # Counter rows that differed from the recount (0 when the triggers kept them right).
    wrong: int


def recount(account_id: int | None = None) -> dict[tuple, tuple[int, int]]:
    """The counter rows as a recount over the sessions gives them: key → (sessions, unread)."""
    sessions = Session.objects.all()
    if account_id is not None:
        sessions = sessions.filter(account_id=account_id)
    rows = (
        sessions.annotate(
            assignee_key=Coalesce("assignee_id", Value(0), output_field=IntegerField()),
            unread_key=Q(unread_count__gt=0),
        )
        .values("account_id", "status", "assignee_key", "unread_key")
        .annotate(n=Count("pk"), unread=Sum("unread_count"))
        .order_by()
    )
    return {
        (row["account_id"], row["status"], row["assignee_key"], bool(row["unread_key"])): (
            row["n"],
            row["unread"],
        )
        for row in rows
    }


def stored(account_id: int | None = None) -> dict[tuple, tuple[int, int]]:
    """The counter rows as they are, leaving out rows that count nothing."""
    rows = SessionCounter.objects.exclude(sessions=0, unread=0)
    if account_id is not None:
        rows = rows.filter(account_id=account_id)
    return {
        (row.account_id, row.status, row.assignee_id, row.has_unread): (row.sessions, row.unread)
        for row in rows
    }


def account_ids() -> list[int]:
    """Every account that has sessions or counter rows (an account's leftover zero rows too)."""
    return sorted(
        set(Session.objects.values_list("account_id", flat=True).distinct())
        | set(SessionCounter.objects.values_list("account_id", flat=True).distinct())
    )


def rebuild(accounts: Iterable[int]) -> Iterator[Rebuilt]:
    """Recount each account's counter rows from its sessions, one short transaction each.

    On PostgreSQL the session table is locked in SHARE mode for the account's recount: writes
    to sessions wait the few milliseconds it takes (reads do not), so no change slips between
    the recount and its rows. SQLite has one writer at a time anyway.
    """
    for account_id in accounts:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(f"LOCK TABLE {Session._meta.db_table} IN SHARE MODE")
            before = stored(account_id)
            SessionCounter.objects.filter(account_id=account_id).delete()
            with connection.cursor() as cursor:
                cursor.execute(_RECOUNT_SQL.format(where="WHERE account_id = %s"), [account_id])
            after = stored(account_id)
        wrong = sum(1 for key in before.keys() | after.keys() if before.get(key) != after.get(key))
        yield Rebuilt(account_id=account_id, rows=len(after), wrong=wrong)
