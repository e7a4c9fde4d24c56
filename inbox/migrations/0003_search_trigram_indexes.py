"""Trigram GIN indexes for the inbox's search box, on PostgreSQL only.

Django writes `icontains` as `UPPER(col::text) LIKE UPPER('%q%')` on PostgreSQL, so the indexes are
on UPPER(col) with gin_trgm_ops: a substring search (Chinese included, which has no word breaks)
then reads the index instead of every row. SQLite has no such index; the migration does nothing
there, so the same migrations run on both.
"""

from django.db import migrations

INDEXES = {
    # search(): message text.
    "inbox_message_content_trgm": ("inbox_message", "content"),
    # search(): a session by the peer's nickname, user name or the upstream session id.
    "inbox_session_nickname_trgm": ("inbox_session", "peer_nickname"),
    "inbox_session_username_trgm": ("inbox_session", "peer_username"),
    "inbox_session_session_id_trgm": ("inbox_session", "msg_session_id"),
}


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, (table, column) in INDEXES.items():
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin (UPPER("{column}") gin_trgm_ops)'
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0002_reply_send_claim"),
    ]

    operations = [
        migrations.RunPython(create_indexes, drop_indexes, elidable=False),
    ]
