"""Who is around: each agent's availability, and who has a conversation open or is typing in it.

Availability is one of online / busy / away / offline:
- offline: no tab of the inbox has sent a heartbeat for LIVE_TAB_SECONDS (every tab closed, or
  the machine asleep);
- busy or away: chosen with the switch in the sidebar (kept while a tab is open);
- away, too, when the agent chose online but has not touched the inbox (typed, clicked,
  scrolled) for LIVE_AWAY_AFTER_MINUTES;
- online otherwise.

A tab sends a heartbeat every few seconds (static/inbox/live.js, views.heartbeat) saying whether
the person did anything since the last one; while a conversation is open the heartbeat also says
so, and whether its composer is being typed in. Both expire within seconds of the last heartbeat
(LIVE_VIEW_SECONDS), so a closed tab or a lost connection clears itself.

All of it lives in store.py's store (Redis, or this process): no database query.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from inbox.live.store import Batch, get_store, key

ONLINE = "online"
BUSY = "busy"
AWAY = "away"
OFFLINE = "offline"
LABELS = {ONLINE: _("Online"), BUSY: _("Busy"), AWAY: _("Away"), OFFLINE: _("Offline")}
# What the sidebar's switch offers: offline is not chosen, it is having no tab open.
CHOSEN = (ONLINE, BUSY, AWAY)
# A chosen status outlives a browser restart for this long.
STATUS_KEEP_SECONDS = 7 * 24 * 3600


def clock() -> float:
    """Seconds since the epoch; the one place presence reads the time (tests move it)."""
    return time.time()


def _tabs_key(user_id: int) -> str:
    return key("tabs", user_id)


def _active_key(user_id: int) -> str:
    return key("active", user_id)


def _status_key(user_id: int) -> str:
    return key("status", user_id)


def _viewing_key(session_id: int) -> str:
    return key("viewing", session_id)


def _typing_key(session_id: int) -> str:
    return key("typing", session_id)


@dataclass(frozen=True)
class Beat:
    """What a heartbeat found: the others in the conversation, whether this heartbeat changed
    what they see (the tab just opened it, or started or stopped typing: the caller tells them
    at once), and whether it made the agent online (from offline, or from an automatic away by
    working again): auto-assignment may have conversations waiting for them."""

    others: list[Viewer]
    changed: bool
    came_online: bool


@dataclass(frozen=True)
class Viewer:
    """Someone else with a conversation open."""

    user_id: int
    name: str
    typing: bool


def heartbeat(
    user_id: int,
    name: str,
    tab: str,
    *,
    active: bool,
    session_id: int | None = None,
    typing: bool = False,
) -> Beat:
    """One tab is open (and, with `session_id`, showing that conversation; `typing` in its
    composer). `active`: the person did something since the tab's last heartbeat.
    Two round trips to the store (a read, then the writes), no database query."""
    now = clock()
    keys = [_tabs_key(user_id)]
    if session_id is not None:
        keys += [_viewing_key(session_id), _typing_key(session_id)]
    (tabs, *before), (status, last_active) = get_store().snapshot(
        keys, [_status_key(user_id), _active_key(user_id)], now
    )
    was = _state(bool(tabs), status, last_active, now)
    if active:
        last_active = repr(now)
    view_seconds = settings.LIVE_VIEW_SECONDS
    batch = Batch(now).touch(_tabs_key(user_id), tab, now + settings.LIVE_TAB_SECONDS)
    if active:
        batch.put(_active_key(user_id), repr(now), settings.LIVE_AWAY_AFTER_MINUTES * 60 + 60)
    changed = False
    viewers: list[Viewer] = []
    if session_id is not None:
        viewing, typists = before
        me = _viewer_member(user_id, tab, name)
        batch.touch(_viewing_key(session_id), me, now + view_seconds)
        was_typing = str(user_id) in typists
        if typing:
            batch.touch(_typing_key(session_id), str(user_id), now + view_seconds)
        elif was_typing:
            batch.drop(_typing_key(session_id), str(user_id))
        changed = me not in viewing or was_typing != typing
        viewers = _viewers(viewing, typists, exclude=user_id)
    get_store().write(batch)
    came_online = was != ONLINE and _state(True, status, last_active, now) == ONLINE
    return Beat(viewers, changed, came_online=came_online)


def viewers(session_id: int, *, exclude: int | None = None) -> list[Viewer]:
    """Who has the conversation open (one entry per person), typists first."""
    viewing, typists = get_store().alive(
        [_viewing_key(session_id), _typing_key(session_id)], clock()
    )
    return _viewers(viewing, typists, exclude=exclude)


def leave(user_id: int, name: str, tab: str, session_id: int) -> None:
    """The tab closed the conversation (or closed): it stops counting at once."""
    get_store().write(
        Batch(clock())
        .drop(_viewing_key(session_id), _viewer_member(user_id, tab, name))
        .drop(_typing_key(session_id), str(user_id))
    )


def close_tab(user_id: int, tab: str) -> None:
    """A tab was closed (its page said so on the way out); without it, it times out."""
    get_store().write(Batch(clock()).drop(_tabs_key(user_id), tab))


def _viewer_member(user_id: int, tab: str, name: str) -> str:
    # The name rides in the member so the header needs no lookup; a renamed user's old entry
    # expires within seconds.
    return f"{user_id}:{tab}:{name}"


def _viewers(
    viewing: dict[str, float], typists: dict[str, float], *, exclude: int | None
) -> list[Viewer]:
    found: dict[int, Viewer] = {}
    for member in viewing:
        user_id, _tab, name = member.split(":", 2)
        if int(user_id) != exclude:
            found[int(user_id)] = Viewer(int(user_id), name, user_id in typists)
    return sorted(
        found.values(), key=lambda viewer: (not viewer.typing, viewer.name, viewer.user_id)
    )


def set_status(user_id: int, status: str) -> None:
    """The sidebar switch. Choosing online is also activity (it ends an automatic away)."""
    if status not in CHOSEN:
        raise ValueError(f"not a status one chooses: {status!r}")
    now = clock()
    batch = Batch(now).put(_status_key(user_id), status, STATUS_KEEP_SECONDS)
    if status == ONLINE:
        batch.put(_active_key(user_id), repr(now), settings.LIVE_AWAY_AFTER_MINUTES * 60 + 60)
    get_store().write(batch)


def chosen_status(user_id: int) -> str:
    """What the switch shows: the user's choice (online unless they chose otherwise)."""
    (status,) = get_store().get_many([_status_key(user_id)])
    return status if status in CHOSEN else ONLINE


def availability(user_ids: Iterable[int]) -> dict[int, str]:
    """Each user's availability: "online", "busy", "away" or "offline". One round trip
    to the store whatever the number of users."""
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return {}
    now = clock()
    tabs, values = get_store().snapshot(
        [_tabs_key(user_id) for user_id in ids],
        [k for user_id in ids for k in (_status_key(user_id), _active_key(user_id))],
        now,
    )
    return {
        user_id: _state(bool(tabs[index]), values[2 * index], values[2 * index + 1], now)
        for index, user_id in enumerate(ids)
    }


def _state(has_tabs: bool, status: str | None, last_active: str | None, now: float) -> str:
    if not has_tabs:
        return OFFLINE
    if status in (BUSY, AWAY):
        return status
    if last_active is None or now - float(last_active) > settings.LIVE_AWAY_AFTER_MINUTES * 60:
        return AWAY
    return ONLINE


def online_user_ids(user_ids: Iterable[int]) -> set[int]:
    """The users who are online: a tab open, working in it, and not busy or away (those
    auto-assignment may hand a conversation to). A live event reaches busy and away agents too:
    it goes to every open tab."""
    return {user_id for user_id, state in availability(user_ids).items() if state == ONLINE}
