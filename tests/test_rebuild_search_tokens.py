"""rebuild_search_tokens: rebuilds the search indexes in place, and search still finds letters."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection

from inbox.search import search


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_rebuilds_both_search_indexes_and_search_still_finds_letters(synced):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexrelid::regclass::text, indexrelid FROM pg_index "
            "WHERE indexrelid::regclass::text LIKE 'inbox_%%_vector'"
        )
        before = dict(cursor.fetchall())
    out = StringIO()

    call_command("rebuild_search_tokens", stdout=out)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexrelid::regclass::text, indexrelid FROM pg_index "
            "WHERE indexrelid::regclass::text LIKE 'inbox_%%_vector' AND indisvalid"
        )
        after = dict(cursor.fetchall())
    assert (
        set(after)
        == set(before)
        == {
            "inbox_message_search_vector",
            "inbox_sessionname_nickname_vector",
        }
    )
    # REINDEX CONCURRENTLY builds a new index and swaps it in: new storage, same name.
    assert all(after[name] != before[name] for name in after)
    assert "Rebuilt inbox_message_search_vector" in out.getvalue()
    root = get_user_model().objects.create_superuser("root")
    assert search(root, "保温杯").messages


def test_on_sqlite_there_is_nothing_to_rebuild(db):
    if connection.vendor == "postgresql":
        pytest.skip("SQLite behaviour")
    out = StringIO()
    call_command("rebuild_search_tokens", stdout=out)
    assert "Nothing to rebuild" in out.getvalue()
