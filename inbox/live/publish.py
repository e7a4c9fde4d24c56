"""Events to open tabs: `to_users(user_ids, event, data)`.

Each user has a channel (Redis pub/sub, or this process's listeners on the embedded default);
every tab of theirs that holds a server-sent events connection (stream.py) receives the event and
the browser dispatches it as a `live:<event>` DOM event with `data` as its detail
(static/inbox/live.js). An event is a nudge, never the only way news arrives: a tab without the
connection (or on the embedded default, in another process than the publisher) gets the same
news from its next poll.

Say only what every receiver may know: events go to the users named, nobody else, and carry ids
and short labels, not letters' text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from inbox.live.store import get_store, key

EVENT_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


def user_channel(user_id: int) -> str:
    return key("user", user_id)


def to_users(user_ids: Iterable[int], event: str, data: dict[str, Any]) -> None:
    """Send `event` (lowercase letters, digits and dashes) with `data` (JSON-serialisable) to
    every open tab of these users, once the current transaction commits (at once outside one):
    a tab that hears of a change and asks for it must find it committed. A rolled-back
    transaction sends nothing."""
    if not EVENT_NAME.match(event):
        raise ValueError(f"bad live event name: {event!r}")
    channels = [user_channel(user_id) for user_id in sorted(set(user_ids))]
    if not channels:
        return
    message = json.dumps({"event": event, "data": data}, ensure_ascii=False, separators=(",", ":"))
    transaction.on_commit(lambda: get_store().publish(channels, message))
