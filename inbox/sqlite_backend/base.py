"""Django's SQLite backend, told the real limit on bound parameters per statement.

Django 5.2 assumes SQLite's old compile-time default of 999, so a bulk insert of a 1,000-letter
page is split into ~40 statements; SQLite has allowed 32,766 since 3.32, and Python 3.11 can read
the actual limit. Django 6.0 reads it the same way; drop this module when upgrading."""

from __future__ import annotations

import sqlite3

from django.db.backends.sqlite3 import base, features
from django.utils.functional import cached_property


class DatabaseFeatures(features.DatabaseFeatures):
    @cached_property
    def max_query_params(self) -> int:
        self.connection.ensure_connection()
        return self.connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
