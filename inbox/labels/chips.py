"""A session's labels as chips, read with the session itself (no query of their own).

`with_label_chips(sessions)` adds one column to a session query: the session's labels (id, name,
colour) as a JSON array, from a correlated subquery on the unique (session, label) index. So the
list's page, a poll's changed rows and a thread's session bring their chips along, and rendering
fifty rows reads no more than rendering one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape

from django.db.models import F, Func, QuerySet, TextField

from inbox.labels.models import Label, SessionLabel

_LINKS = SessionLabel._meta.db_table
_LABELS = Label._meta.db_table
COLOURS = frozenset(Label.Colour.values)

_POSTGRESQL = (
    "(SELECT COALESCE(json_agg(json_build_array(lb.id, lb.name, lb.colour) "
    f"ORDER BY lower(lb.name), lb.id), '[]')::text FROM {_LINKS} sl "
    f"JOIN {_LABELS} lb ON lb.id = sl.label_id WHERE sl.session_id = %(expressions)s)"
)
_SQLITE = (
    "(SELECT json_group_array(json_array(id, name, colour)) FROM (SELECT lb.id, lb.name, "
    f"lb.colour FROM {_LINKS} sl JOIN {_LABELS} lb ON lb.id = sl.label_id "
    "WHERE sl.session_id = %(expressions)s ORDER BY lower(lb.name), lb.id))"
)


class LabelChips(Func):
    """The labels of the row's session as JSON text: [[id, name, colour], …]."""

    output_field = TextField()

    def __init__(self) -> None:
        super().__init__(F("pk"))

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template=_POSTGRESQL, **extra)

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template=_SQLITE, **extra)


def with_label_chips(sessions: QuerySet) -> QuerySet:
    """`sessions` with each row's labels (read them with `chips_of`)."""
    return sessions.annotate(label_chips=LabelChips())


@dataclass(frozen=True)
class Chip:
    id: int
    name: str
    colour: str

    @property
    def css_class(self) -> str:
        return f"label-{self.colour if self.colour in COLOURS else 'grey'}"


def chips_of(session) -> list[Chip]:
    """The chips `with_label_chips` read for `session`; none when it was loaded without them."""
    raw = getattr(session, "label_chips", None)
    if not raw:
        return []
    return [Chip(int(pk), str(name), str(colour)) for pk, name, colour in json.loads(raw)]


def chips_html(session) -> list[str]:
    """The session's labels as the list row's tags, escaped."""
    return [
        f'<span class="tag label-chip {chip.css_class}">{escape(chip.name)}</span>'
        for chip in chips_of(session)
    ]
