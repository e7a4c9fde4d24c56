"""The labels' counts, maintained instead of recounted (the same design as inbox/counters.py).

labels.LabelCounter holds, per (label, account), how many sessions carry the label and how many of
them are open. Triggers keep it in step, in the same transaction as the change:
- on labels_sessionlabel: a label put on or taken off sessions;
- on inbox_session: a session whose status moves into or out of "open" (or to another account),
  and a deleted session, for the labels it still carries;
- on labels_label: a deleted label's counter rows go with it.

Deleting a session deletes its label rows too (Django cascades them first); whichever of the two
goes first, only one of the triggers still finds the pair, so nothing is subtracted twice.

PostgreSQL: statement-level triggers with transition tables, one aggregated upsert per statement,
visiting counter rows in key order (so concurrent statements lock them in the same order); a
sync page's session update only joins its old and new rows to find the few whose status moved.
SQLite: row triggers, the session one only for rows whose open-ness or account changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from django.db import connection, connections, transaction
from django.db.models import Count, Q

from inbox.counters import Rebuilt
from inbox.labels.models import Label, LabelCounter, SessionLabel
from inbox.models import Session

TABLE = LabelCounter._meta.db_table
LINKS = SessionLabel._meta.db_table
LABELS = Label._meta.db_table
SESSIONS = Session._meta.db_table
OPEN = Session.Status.OPEN.value

# --- PostgreSQL ------------------------------------------------------------------------------

_PG_UPSERT = f"""
    INSERT INTO {TABLE} AS c (label_id, account_id, sessions, open)
    SELECT label_id, account_id, SUM(sessions), SUM(open)
    FROM ({{rows}}) AS delta
    GROUP BY label_id, account_id
    HAVING SUM(sessions) <> 0 OR SUM(open) <> 0
    ORDER BY label_id, account_id
    ON CONFLICT (label_id, account_id) DO UPDATE
    SET sessions = c.sessions + excluded.sessions, open = c.open + excluded.open;
"""
# Links put on or taken off, with their session's account and status. A link whose label is gone
# (deleted in this transaction) counts nothing: the label's counter rows went with it.
_PG_LINKS = (
    "SELECT l.label_id, s.account_id, {sign}1 AS sessions, "
    "{sign}(s.status = '" + OPEN + "')::int AS open "
    "FROM {rows} l JOIN " + SESSIONS + " s ON s.id = l.session_id "
    "JOIN " + LABELS + " lb ON lb.id = l.label_id"
)
# Sessions whose status moved into or out of "open", or to another account: their old side
# subtracted, their new side added, for each label they carry.
_PG_MOVED = f"""
    SELECT l.label_id, moved.account_id, moved.sessions, moved.open
    FROM (
        SELECT o.id, o.account_id, -1 AS sessions, -(o.status = '{OPEN}')::int AS open
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE o.account_id <> n.account_id OR (o.status = '{OPEN}') <> (n.status = '{OPEN}')
        UNION ALL
        SELECT n.id, n.account_id, 1, (n.status = '{OPEN}')::int
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE o.account_id <> n.account_id OR (o.status = '{OPEN}') <> (n.status = '{OPEN}')
    ) AS moved
    JOIN {LINKS} l ON l.session_id = moved.id
"""
_PG_DELETED = f"""
    SELECT l.label_id, o.account_id, -1 AS sessions, -(o.status = '{OPEN}')::int AS open
    FROM old_rows o JOIN {LINKS} l ON l.session_id = o.id
"""

POSTGRESQL_INSTALL = [
    f"""
    CREATE FUNCTION labels_count_links() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'INSERT' THEN
        {_PG_UPSERT.format(rows=_PG_LINKS.format(sign="", rows="new_rows"))}
      ELSE
        {_PG_UPSERT.format(rows=_PG_LINKS.format(sign="-", rows="old_rows"))}
      END IF;
      RETURN NULL;
    END $$;
    """,
    f"""
    CREATE FUNCTION labels_count_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'UPDATE' THEN
        {_PG_UPSERT.format(rows=_PG_MOVED)}
      ELSE
        {_PG_UPSERT.format(rows=_PG_DELETED)}
      END IF;
      RETURN NULL;
    END $$;
    """,
    f"""
    CREATE FUNCTION labels_forget_counters() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      DELETE FROM {TABLE} WHERE label_id IN (SELECT id FROM old_rows);
      RETURN NULL;
    END $$;
    """,
    f"""CREATE TRIGGER labels_count_links_insert AFTER INSERT ON {LINKS}
       REFERENCING NEW TABLE AS new_rows
       FOR EACH STATEMENT EXECUTE FUNCTION labels_count_links();""",
    f"""CREATE TRIGGER labels_count_links_delete AFTER DELETE ON {LINKS}
       REFERENCING OLD TABLE AS old_rows
       FOR EACH STATEMENT EXECUTE FUNCTION labels_count_links();""",
    f"""CREATE TRIGGER labels_count_sessions_update AFTER UPDATE ON {SESSIONS}
       REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
       FOR EACH STATEMENT EXECUTE FUNCTION labels_count_sessions();""",
    f"""CREATE TRIGGER labels_count_sessions_delete AFTER DELETE ON {SESSIONS}
       REFERENCING OLD TABLE AS old_rows
       FOR EACH STATEMENT EXECUTE FUNCTION labels_count_sessions();""",
    f"""CREATE TRIGGER labels_forget_counters AFTER DELETE ON {LABELS}
       REFERENCING OLD TABLE AS old_rows
       FOR EACH STATEMENT EXECUTE FUNCTION labels_forget_counters();""",
]
POSTGRESQL_UNINSTALL = [
    f"DROP TRIGGER IF EXISTS labels_count_links_insert ON {LINKS};",
    f"DROP TRIGGER IF EXISTS labels_count_links_delete ON {LINKS};",
    f"DROP TRIGGER IF EXISTS labels_count_sessions_update ON {SESSIONS};",
    f"DROP TRIGGER IF EXISTS labels_count_sessions_delete ON {SESSIONS};",
    f"DROP TRIGGER IF EXISTS labels_forget_counters ON {LABELS};",
    "DROP FUNCTION IF EXISTS labels_count_links();",
    "DROP FUNCTION IF EXISTS labels_count_sessions();",
    "DROP FUNCTION IF EXISTS labels_forget_counters();",
]

# --- SQLite ----------------------------------------------------------------------------------


def _sqlite_add(label: str, account: str, sessions: str, open_: str, where: str) -> str:
    # "WHERE" before ON CONFLICT keeps SQLite from reading ON as a join constraint.
    return f"""
        INSERT INTO {TABLE} (label_id, account_id, sessions, open)
        SELECT {label}, {account}, {sessions}, {open_} {where}
        ON CONFLICT (label_id, account_id) DO UPDATE
        SET sessions = sessions + excluded.sessions, open = open + excluded.open;
    """


SQLITE_INSTALL = [
    f"""CREATE TRIGGER labels_count_links_insert AFTER INSERT ON {LINKS} BEGIN
        {
        _sqlite_add(
            "NEW.label_id",
            "s.account_id",
            "1",
            f"s.status = '{OPEN}'",
            f"FROM {SESSIONS} s WHERE s.id = NEW.session_id "
            f"AND EXISTS (SELECT 1 FROM {LABELS} WHERE id = NEW.label_id)",
        )
    }
    END;""",
    f"""CREATE TRIGGER labels_count_links_delete AFTER DELETE ON {LINKS} BEGIN
        UPDATE {TABLE} SET sessions = sessions - 1,
            open = open - (SELECT status = '{OPEN}' FROM {SESSIONS} WHERE id = OLD.session_id)
        WHERE label_id = OLD.label_id
          AND account_id = (SELECT account_id FROM {SESSIONS} WHERE id = OLD.session_id);
    END;""",
    f"""CREATE TRIGGER labels_count_sessions_update AFTER UPDATE OF account_id, status
        ON {SESSIONS}
        WHEN OLD.account_id <> NEW.account_id OR (OLD.status = '{OPEN}') <> (NEW.status = '{OPEN}')
    BEGIN
        UPDATE {TABLE} SET sessions = sessions - 1, open = open - (OLD.status = '{OPEN}')
        WHERE account_id = OLD.account_id
          AND label_id IN (SELECT label_id FROM {LINKS} WHERE session_id = OLD.id);
        {
        _sqlite_add(
            "l.label_id",
            "NEW.account_id",
            "1",
            f"NEW.status = '{OPEN}'",
            f"FROM {LINKS} l WHERE l.session_id = NEW.id",
        )
    }
    END;""",
    f"""CREATE TRIGGER labels_count_sessions_delete AFTER DELETE ON {SESSIONS} BEGIN
        UPDATE {TABLE} SET sessions = sessions - 1, open = open - (OLD.status = '{OPEN}')
        WHERE account_id = OLD.account_id
          AND label_id IN (SELECT label_id FROM {LINKS} WHERE session_id = OLD.id);
    END;""",
    f"""CREATE TRIGGER labels_forget_counters AFTER DELETE ON {LABELS} BEGIN
        DELETE FROM {TABLE} WHERE label_id = OLD.id;
    END;""",
]
SQLITE_UNINSTALL = [
    "DROP TRIGGER IF EXISTS labels_count_links_insert;",
    "DROP TRIGGER IF EXISTS labels_count_links_delete;",
    "DROP TRIGGER IF EXISTS labels_count_sessions_update;",
    "DROP TRIGGER IF EXISTS labels_count_sessions_delete;",
    "DROP TRIGGER IF EXISTS labels_forget_counters;",
]

TRIGGERS = (
    "labels_count_links_insert",
    "labels_count_links_delete",
    "labels_count_sessions_update",
    "labels_count_sessions_delete",
    "labels_forget_counters",
)


def _statements(vendor: str, *, install: bool) -> list[str]:
    if vendor == "postgresql":
        return POSTGRESQL_INSTALL if install else POSTGRESQL_UNINSTALL
    if vendor == "sqlite":
        return SQLITE_INSTALL if install else SQLITE_UNINSTALL
    raise NotImplementedError(f"label counters have no triggers for {vendor}")


_RECOUNT_SQL = f"""
    INSERT INTO {TABLE} (label_id, account_id, sessions, open)
    SELECT l.label_id, s.account_id, COUNT(*), SUM(CASE WHEN s.status = '{OPEN}' THEN 1 ELSE 0 END)
    FROM {LINKS} l JOIN {SESSIONS} s ON s.id = l.session_id
    {{where}}
    GROUP BY l.label_id, s.account_id
"""


def _reinstall(cursor, vendor: str) -> None:
    for statement in _statements(vendor, install=False):
        cursor.execute(statement)
    for statement in _statements(vendor, install=True):
        cursor.execute(statement)
    cursor.execute(f"DELETE FROM {TABLE}")
    cursor.execute(_RECOUNT_SQL.format(where=""))


def install_triggers(apps, schema_editor) -> None:
    """Migration step: create the triggers and count what is there already."""
    with schema_editor.connection.cursor() as cursor:
        _reinstall(cursor, schema_editor.connection.vendor)


def uninstall_triggers(apps, schema_editor) -> None:
    for statement in _statements(schema_editor.connection.vendor, install=False):
        schema_editor.execute(statement, params=None)


def ensure_triggers(sender=None, *, using: str = "default", **kwargs) -> None:
    """After every migrate (post_migrate): put the triggers back if a migration lost them (SQLite
    drops a table's triggers when it rebuilds the table to alter a column), and recount."""
    db = connections[using]
    if db.vendor not in ("postgresql", "sqlite"):
        return
    with db.cursor() as cursor:
        if db.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        else:
            cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        present = {row[0] for row in cursor.fetchall()}
        tables = set(db.introspection.table_names(cursor))
    if not {TABLE, LINKS, LABELS} <= tables or present.issuperset(TRIGGERS):
        return
    with transaction.atomic(using=using), db.cursor() as cursor:
        _reinstall(cursor, db.vendor)


# --- recounting -----------------------------------------------------------------------------


def recount(account_id: int | None = None) -> dict[tuple[int, int], tuple[int, int]]:
    """The counter rows as a recount gives them: (label, account) → (sessions, open)."""
    links = SessionLabel.objects.all()
    if account_id is not None:
        links = links.filter(session__account_id=account_id)
    rows = (
        links.values("label_id", "session__account_id")
        .annotate(n=Count("pk"), open=Count("pk", filter=Q(session__status=OPEN)))
        .order_by()
    )
    return {(row["label_id"], row["session__account_id"]): (row["n"], row["open"]) for row in rows}


def stored(account_id: int | None = None) -> dict[tuple[int, int], tuple[int, int]]:
    """The counter rows as they are, leaving out rows that count nothing."""
    rows = LabelCounter.objects.exclude(sessions=0, open=0)
    if account_id is not None:
        rows = rows.filter(account_id=account_id)
    return {(row.label_id, row.account_id): (row.sessions, row.open) for row in rows}


def account_ids() -> list[int]:
    """Every account with labelled sessions or counter rows."""
    return sorted(
        set(
            SessionLabel.objects.values_list("session__account_id", flat=True).order_by().distinct()
        )
        | set(LabelCounter.objects.values_list("account_id", flat=True).order_by().distinct())
    )


def rebuild(accounts: Iterable[int]) -> Iterator[Rebuilt]:
    """Recount each account's label counters, one short transaction each. On PostgreSQL the
    session and link tables are locked in SHARE mode for the recount: writes to them wait the
    few milliseconds it takes (reads do not), so no change slips between recount and rows."""
    for account_id in accounts:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(f"LOCK TABLE {SESSIONS}, {LINKS} IN SHARE MODE")
            before = stored(account_id)
            LabelCounter.objects.filter(account_id=account_id).delete()
            with connection.cursor() as cursor:
                cursor.execute(_RECOUNT_SQL.format(where="WHERE s.account_id = %s"), [account_id])
            after = stored(account_id)
        wrong = sum(1 for key in before.keys() | after.keys() if before.get(key) != after.get(key))
        yield Rebuilt(account_id=account_id, rows=len(after), wrong=wrong)
