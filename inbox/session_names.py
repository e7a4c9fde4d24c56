"""inbox.SessionName, the names search finds a conversation by, kept in step with inbox_session
by database triggers.

Why triggers rather than writes in the services, as for the counters (inbox/counters.py): a
session is inserted by sync (an INSERT … unnest on PostgreSQL, bulk_create on SQLite), by the
demo, the data-set builder, admin and tests, and its nickname is set by the contact backfills in
one statement per batch; a trigger sees every one of those, in the same transaction, and no
future path can forget the names. Sync's update of a page's sessions never lists the name
columns, so the update trigger (a row trigger on those columns only, and only when one really
changed) costs it nothing. A session's deletion takes its names with it: Django's cascade.

On PostgreSQL a new session's names are inserted per statement, from the statement's transition
table: one INSERT for a sync page's new sessions.
"""

from __future__ import annotations

from django.db import connections, transaction

from inbox.models import Session, SessionName

TABLE = SessionName._meta.db_table
SESSIONS = Session._meta.db_table
NAMES = ("peer_nickname", "peer_username", "msg_session_id")
TRIGGERS = ("inbox_session_names_insert", "inbox_session_names_update")

_COLUMNS = f"session_id, {', '.join(NAMES)}"
_CHANGED = " OR ".join(f"OLD.{name} IS DISTINCT FROM NEW.{name}" for name in NAMES)
_SET_FROM_NEW = ", ".join(f"{name} = NEW.{name}" for name in NAMES)

POSTGRESQL_INSTALL = [
    f"""
    CREATE FUNCTION inbox_session_names_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO {TABLE} ({_COLUMNS}) SELECT id, {", ".join(NAMES)} FROM new_rows;
      RETURN NULL;
    END $$;
    """,
    f"""
    CREATE FUNCTION inbox_session_names_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE {TABLE} SET {_SET_FROM_NEW} WHERE session_id = NEW.id;
      RETURN NULL;
    END $$;
    """,
    f"""CREATE TRIGGER inbox_session_names_insert AFTER INSERT ON {SESSIONS}
       REFERENCING NEW TABLE AS new_rows
       FOR EACH STATEMENT EXECUTE FUNCTION inbox_session_names_insert();""",
    # PostgreSQL allows no transition table on a trigger limited to some columns: per row, and
    # skipped at once by every UPDATE that does not set a name column.
    f"""CREATE TRIGGER inbox_session_names_update
       AFTER UPDATE OF {", ".join(NAMES)} ON {SESSIONS}
       FOR EACH ROW WHEN ({_CHANGED})
       EXECUTE FUNCTION inbox_session_names_update();""",
]
POSTGRESQL_UNINSTALL = [
    f"DROP TRIGGER IF EXISTS inbox_session_names_insert ON {SESSIONS};",
    f"DROP TRIGGER IF EXISTS inbox_session_names_update ON {SESSIONS};",
    "DROP FUNCTION IF EXISTS inbox_session_names_insert();",
    "DROP FUNCTION IF EXISTS inbox_session_names_update();",
]

SQLITE_INSTALL = [
    f"CREATE TRIGGER inbox_session_names_insert AFTER INSERT ON {SESSIONS} BEGIN "
    f"INSERT INTO {TABLE} ({_COLUMNS}) "
    f"VALUES (NEW.id, {', '.join(f'NEW.{name}' for name in NAMES)}); END;",
    f"CREATE TRIGGER inbox_session_names_update AFTER UPDATE OF {', '.join(NAMES)} "
    f"ON {SESSIONS} WHEN {_CHANGED} BEGIN "
    f"UPDATE {TABLE} SET {_SET_FROM_NEW} WHERE session_id = NEW.id; END;",
]
SQLITE_UNINSTALL = [
    "DROP TRIGGER IF EXISTS inbox_session_names_insert;",
    "DROP TRIGGER IF EXISTS inbox_session_names_update;",
]

# Every session's names, for a table that has none yet: one set-based statement.
COPY_ALL = f"INSERT INTO {TABLE} ({_COLUMNS}) SELECT id, {', '.join(NAMES)} FROM {SESSIONS}"


def _statements(vendor: str, *, install: bool) -> list[str]:
    if vendor == "postgresql":
        return POSTGRESQL_INSTALL if install else POSTGRESQL_UNINSTALL
    if vendor == "sqlite":
        return SQLITE_INSTALL if install else SQLITE_UNINSTALL
    raise NotImplementedError(f"session names have no triggers for {vendor}")


def install_triggers(apps, schema_editor) -> None:
    """Migration step: create the triggers, then copy the names there are. The triggers come
    first: on PostgreSQL creating them locks the session table against writes until the
    migration commits, so no session can slip in between the copy and the triggers."""
    for statement in _statements(schema_editor.connection.vendor, install=True):
        schema_editor.execute(statement, params=None)
    schema_editor.execute(f"DELETE FROM {TABLE}", params=None)
    schema_editor.execute(COPY_ALL, params=None)


def uninstall_triggers(apps, schema_editor) -> None:
    for statement in _statements(schema_editor.connection.vendor, install=False):
        schema_editor.execute(statement, params=None)


def ensure_triggers(*, using: str = "default") -> None:
    """After every migrate: put the triggers back, and copy the names again, if a migration lost
    them (SQLite alters a column by copying the table to a new one, dropping its triggers)."""
    db = connections[using]
    if db.vendor not in ("postgresql", "sqlite"):
        return
    with db.cursor() as cursor:
        if TABLE not in db.introspection.table_names(cursor):
            return  # a migrate that stopped before migration 0018
        if db.vendor == "sqlite":
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
                [SESSIONS],
            )
        else:
            cursor.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass", [SESSIONS])
        present = {row[0] for row in cursor.fetchall()}
    if present.issuperset(TRIGGERS):
        return
    with transaction.atomic(using=using), db.cursor() as cursor:
        for statement in _statements(db.vendor, install=False):
            cursor.execute(statement)
        for statement in _statements(db.vendor, install=True):
            cursor.execute(statement)
        cursor.execute(f"DELETE FROM {TABLE}")
        cursor.execute(COPY_ALL)
