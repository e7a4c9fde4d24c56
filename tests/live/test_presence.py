"""Availability (online / busy / away / offline) and who is viewing or typing, with the Redis
store and the in-process one."""

from __future__ import annotations

import pytest

from inbox.live import presence

pytestmark = pytest.mark.usefixtures("live_store")


def beat(user_id: int, tab: str = "t1", *, active: bool = True, **kwargs):
    beat = presence.heartbeat(user_id, f"user {user_id}", tab, active=active, **kwargs)
    return beat.others, beat.changed


def test_nobody_with_a_tab_open_is_offline(clock):
    assert presence.availability([1, 2]) == {1: "offline", 2: "offline"}
    assert presence.online_user_ids([1, 2]) == set()


def test_a_heartbeat_makes_an_agent_online(clock):
    beat(1)
    assert presence.availability([1, 2]) == {1: "online", 2: "offline"}
    assert presence.online_user_ids([1, 2]) == {1}


def test_an_agent_goes_away_after_the_idle_minutes_and_back_on_activity(clock, settings):
    settings.LIVE_AWAY_AFTER_MINUTES = 10
    beat(1)
    for _ in range(9):
        clock.advance(60)
        beat(1, active=False)  # the tab stays open, nobody touches it
    assert presence.availability([1]) == {1: "online"}
    clock.advance(61)
    beat(1, active=False)
    assert presence.availability([1]) == {1: "away"}
    assert presence.online_user_ids([1]) == set()
    beat(1, active=True)
    assert presence.availability([1]) == {1: "online"}


def test_an_agent_is_offline_once_no_tab_beats(clock, settings):
    settings.LIVE_TAB_SECONDS = 45
    beat(1, "tab-a")
    beat(1, "tab-b")
    clock.advance(30)
    beat(1, "tab-b")
    clock.advance(30)  # tab-a is silent 60 s, tab-b 30 s
    assert presence.availability([1]) == {1: "online"}
    clock.advance(20)
    assert presence.availability([1]) == {1: "offline"}
    assert presence.online_user_ids([1]) == set()


def test_a_closed_tab_counts_no_more_at_once(clock):
    beat(1, "tab-a")
    presence.close_tab(1, "tab-a")
    assert presence.availability([1]) == {1: "offline"}


def test_busy_and_away_are_chosen_and_kept_while_a_tab_is_open(clock, settings):
    settings.LIVE_AWAY_AFTER_MINUTES = 10
    beat(1)
    presence.set_status(1, "busy")
    assert presence.chosen_status(1) == "busy"
    assert presence.online_user_ids([1]) == set()  # not to be handed new conversations
    clock.advance(3600)
    beat(1, active=False)
    assert presence.availability([1]) == {1: "busy"}  # not turned into away by idling
    presence.set_status(1, "away")
    assert presence.availability([1]) == {1: "away"}
    clock.advance(3600)
    assert presence.availability([1]) == {1: "offline"}  # every tab gone


def test_choosing_online_ends_an_automatic_away(clock, settings):
    settings.LIVE_AWAY_AFTER_MINUTES = 1
    beat(1)
    clock.advance(120)
    beat(1, active=False)
    assert presence.availability([1]) == {1: "away"}
    presence.set_status(1, "online")
    assert presence.availability([1]) == {1: "online"}


def test_only_online_busy_and_away_can_be_chosen(clock):
    assert presence.chosen_status(1) == "online"
    with pytest.raises(ValueError):
        presence.set_status(1, "offline")


def test_viewers_and_typists_of_a_conversation(clock, settings):
    settings.LIVE_VIEW_SECONDS = 5
    others, changed = beat(1, session_id=7)
    assert (others, changed) == ([], True)
    others, changed = beat(2, session_id=7, typing=True)
    assert others == [presence.Viewer(1, "user 1", typing=False)]
    assert changed
    others, changed = beat(1, session_id=7)
    assert others == [presence.Viewer(2, "user 2", typing=True)]
    assert not changed  # already viewing, still not typing
    assert presence.viewers(9) == []


def test_typing_stops_when_said_and_viewing_expires_without_heartbeats(clock, settings):
    settings.LIVE_VIEW_SECONDS = 5
    beat(1, session_id=7, typing=True)
    _, changed = beat(1, session_id=7, typing=False)
    assert changed
    assert presence.viewers(7) == [presence.Viewer(1, "user 1", typing=False)]
    clock.advance(6)
    assert presence.viewers(7) == []


def test_two_tabs_of_one_agent_are_one_viewer_and_leaving_drops_a_tab(clock):
    beat(1, "tab-a", session_id=7)
    beat(1, "tab-b", session_id=7)
    assert presence.viewers(7) == [presence.Viewer(1, "user 1", typing=False)]
    presence.leave(1, "user 1", "tab-a", 7)
    presence.leave(1, "user 1", "tab-b", 7)
    assert presence.viewers(7) == []


def test_typists_come_first(clock):
    beat(1, session_id=7)
    beat(2, session_id=7, typing=True)
    assert [viewer.user_id for viewer in presence.viewers(7)] == [2, 1]
    assert [viewer.user_id for viewer in presence.viewers(7, exclude=2)] == [1]


def test_a_heartbeat_says_when_it_made_the_agent_online(clock, settings):
    settings.LIVE_TAB_SECONDS = 45
    settings.LIVE_AWAY_AFTER_MINUTES = 1
    assert presence.heartbeat(1, "user 1", "tab-a", active=True).came_online
    assert not presence.heartbeat(1, "user 1", "tab-b", active=True).came_online
    clock.advance(40)
    assert not presence.heartbeat(1, "user 1", "tab-a", active=False).came_online
    clock.advance(40)  # idle 80 s: away
    assert not presence.heartbeat(1, "user 1", "tab-a", active=False).came_online
    assert presence.heartbeat(1, "user 1", "tab-a", active=True).came_online  # back at work
    presence.set_status(1, "busy")
    assert not presence.heartbeat(1, "user 1", "tab-a", active=True).came_online
    clock.advance(60)  # every tab gone
    assert not presence.heartbeat(1, "user 1", "tab-a", active=False).came_online  # busy
