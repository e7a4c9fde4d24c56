"""Search that stays fast at a million letters (issue 9), on PostgreSQL.

pg_trgm extracts no trigram from a one- or two-character query, so `%发货%` read every row. Text
letters and notes are now indexed by `inbox_search_vector(content)`: an IMMUTABLE SQL function
that turns the text into lexemes (every suffix of each maximal run of ASCII letters and digits,
lower-cased, so that a query word cut at either end is a prefix of one of them; each character
and each pair of adjacent characters of every run of CJK and other wide characters), in a GIN
index. inbox.search builds the matching tsquery with the same rules (search_terms) and
always rechecks the real substring. The index is an expression index, so every writer (sync's
inserts, COPY, replies, notes) keeps it current without computing anything itself; after a change
to the function, `manage.py rebuild_search_tokens` rebuilds it.

`inbox_message_search_recent` serves the other half of the plan: common terms are found by
walking the newest text letters. The trigram index on message content is dropped (nothing uses it
any more, and it made every insert slower); the session trigram indexes stay for peer names.
"""

from django.conf import settings
from django.db import migrations, models

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


def create_search_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(SEARCH_VECTOR_FUNCTION)
    # search.search(): text letters and notes containing every lexeme of the query.
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS inbox_message_search_vector ON inbox_message "
        "USING gin (inbox_search_vector(content)) WHERE msg_type = 1"
    )
    schema_editor.execute("DROP INDEX IF EXISTS inbox_message_content_trgm")


def drop_search_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS inbox_message_search_vector")
    schema_editor.execute("DROP FUNCTION IF EXISTS inbox_search_vector(text)")
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS inbox_message_content_trgm ON inbox_message "
        'USING gin (UPPER("content") gin_trgm_ops)'
    )


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0004_audit_event'),
        ('inbox', '0008_list_view_indexes_session_counters'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name='message',
            index=models.Index(condition=models.Q(('msg_type', 1)), fields=['-created_at', '-id'], include=('account', 'kind'), name='inbox_message_search_recent'),
        ),
        migrations.RunPython(create_search_index, drop_search_index, elidable=False),
    ]
