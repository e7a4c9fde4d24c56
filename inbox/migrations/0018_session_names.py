"""Search's names move off the session row into inbox_sessionname, with their GIN indexes.

The four GIN indexes on inbox_session (trigrams of the nickname, user name and session id, and
the nickname's search vector: about 150 entries per session) were written again on every session
update, because sync's update moves indexed columns and so is never HOT: a third of a sync page's
time. The names now live in a narrow table that triggers (inbox/session_names.py) write when a
session is inserted or a name changes; search reads it there.

On PostgreSQL the triggers go in first (which locks the session table against writes until the
migration commits), then every session's names are copied in one INSERT … SELECT, then the
indexes are built over the filled table (faster than growing them row by row), then the old ones
are dropped. SQLite has none of these indexes; it gets the table, the triggers and the copy.
"""

import django.db.models.deletion
from django.db import migrations, models

from inbox import session_names

# search._matching_sessions(): the trigram indexes serve the substring of three characters or
# more (Django writes icontains as UPPER(col::text) LIKE UPPER(…)), the search vector a nickname
# of any length.
NAME_INDEXES = {
    "inbox_sessionname_nickname_trgm": 'gin (UPPER("peer_nickname") gin_trgm_ops)',
    "inbox_sessionname_username_trgm": 'gin (UPPER("peer_username") gin_trgm_ops)',
    "inbox_sessionname_session_id_trgm": 'gin (UPPER("msg_session_id") gin_trgm_ops)',
    "inbox_sessionname_nickname_vector": "gin (inbox_search_vector(peer_nickname))",
}
SESSION_INDEXES = {
    "inbox_session_nickname_trgm": 'gin (UPPER("peer_nickname") gin_trgm_ops)',
    "inbox_session_username_trgm": 'gin (UPPER("peer_username") gin_trgm_ops)',
    "inbox_session_session_id_trgm": 'gin (UPPER("msg_session_id") gin_trgm_ops)',
    "inbox_session_nickname_vector": "gin (inbox_search_vector(peer_nickname))",
}


def move_names(apps, schema_editor):
    session_names.install_triggers(apps, schema_editor)
    if schema_editor.connection.vendor != "postgresql":
        return
    # The GIN builds sort their entries in memory: 100,000 sessions' take seconds, not minutes.
    schema_editor.execute("SET LOCAL maintenance_work_mem = '256MB'")
    for name, definition in NAME_INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON inbox_sessionname USING {definition}"
        )
    for name in SESSION_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
    schema_editor.execute("ANALYZE inbox_sessionname")


def restore_names(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name, definition in SESSION_INDEXES.items():
            schema_editor.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON inbox_session USING {definition}"
            )
    session_names.uninstall_triggers(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0017_activity_detail"),
    ]

    operations = [
        migrations.CreateModel(
            name="SessionName",
            fields=[
                (
                    "session",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="search_names",
                        serialize=False,
                        to="inbox.session",
                    ),
                ),
                ("peer_nickname", models.CharField(blank=True, max_length=200)),
                ("peer_username", models.CharField(blank=True, max_length=200)),
                ("msg_session_id", models.CharField(max_length=200)),
            ],
        ),
        migrations.RunPython(move_names, restore_names, elidable=False),
    ]
