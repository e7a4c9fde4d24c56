"""Search: ASCII words are indexed by every suffix (so a query word cut at its start, such as the
last digits of an order number, is found through the index too), and peer nicknames get the same
search vector so that one- and two-character names (小明), which pg_trgm cannot serve, are found
without reading every session. PostgreSQL only, like 0009.

A database that applied the first version of 0009 has the message index built with the old
function: it is rebuilt here, and only there.
"""

from django.db import migrations

SEARCH_VECTOR_FUNCTION = r"""
CREATE OR REPLACE FUNCTION inbox_search_vector(body text) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $function$
SELECT array_to_tsvector(ARRAY(
    SELECT DISTINCT token FROM (
        SELECT substr(word[1], position) AS token
        FROM regexp_matches(lower(body), '[a-z0-9]{1,100}', 'g') AS word,
             generate_series(1, char_length(word[1])) AS position
        UNION ALL
        SELECT substr(run[1], position, width)
        FROM regexp_matches(body, '[\u2e80-\u2fff\u3040-\ufeff\uff66-\U0010ffff]+', 'g') AS run,
             generate_series(1, char_length(run[1])) AS position,
             (VALUES (1), (2)) AS widths (width)
        WHERE position + width - 1 <= char_length(run[1])
    ) AS tokens
))
$function$
"""


def upgrade(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = 'inbox_search_vector'")
        current = cursor.fetchone()
    schema_editor.execute(SEARCH_VECTOR_FUNCTION)
    if current and "substr(word[1], position)" not in current[0]:
        schema_editor.execute("REINDEX INDEX inbox_message_search_vector")
    # search._matching_sessions(): peers by a nickname of any length.
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS inbox_session_nickname_vector ON inbox_session "
        "USING gin (inbox_search_vector(peer_nickname))"
    )


def downgrade(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS inbox_session_nickname_vector")


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0009_message_search_index"),
    ]

    operations = [
        migrations.RunPython(upgrade, downgrade, elidable=False),
    ]
