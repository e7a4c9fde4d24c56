"""Search: inbox_search_vector() reads only the first 10,000 characters of a text.

A tsvector holds at most 1 MB, and PostgreSQL computes the expression index on every insert: a
letter of 200,000 distinct Chinese characters (or long runs of random ASCII, whose every suffix is
a lexeme) made the function raise "string is too long for tsvector", so the page holding it could
never be stored and the account's sync stalled; a five-megabyte letter took over a minute inside
the page's transaction. Ten thousand characters bound the vector to a few hundred kilobytes in the
worst case and cover every real letter (a reply is at most 1,000); a term further into a longer
letter is still found among the newest letters, which search walks by substring.
"""

from django.db import migrations

SEARCH_VECTOR_FUNCTION = r"""
CREATE OR REPLACE FUNCTION inbox_search_vector(body text) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $function$
SELECT array_to_tsvector(ARRAY(
    SELECT DISTINCT token FROM (
        SELECT substr(word[1], position) AS token
        FROM regexp_matches(lower(left(body, 10000)), '[a-z0-9]{1,100}', 'g') AS word,
             generate_series(1, char_length(word[1])) AS position
        UNION ALL
        SELECT substr(run[1], position, width)
        FROM regexp_matches(
                 left(body, 10000), '[\u2e80-\u2fff\u3040-\ufeff\uff66-\U0010ffff]+', 'g'
             ) AS run,
             generate_series(1, char_length(run[1])) AS position,
             (VALUES (1), (2)) AS widths (width)
        WHERE position + width - 1 <= char_length(run[1])
    ) AS tokens
))
$function$
"""


def bound_search_vector(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # No REINDEX here (it would block writes to the message table for minutes): only letters
    # over 10,000 characters index differently, and a stale entry can only widen the index's
    # candidates, which the substring recheck removes. `manage.py rebuild_search_tokens`
    # rebuilds the index concurrently when convenient.
    schema_editor.execute(SEARCH_VECTOR_FUNCTION)


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0015_message_no_redundant_fk_indexes"),
    ]

    operations = [
        migrations.RunPython(bound_search_vector, migrations.RunPython.noop, elidable=False),
    ]
