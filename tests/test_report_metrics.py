"""The reports' arithmetic on hand-built timelines with known answers."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from inbox.reports.facts import fold
from inbox.reports.metrics import (
    BusinessCalendar,
    change,
    median,
    percentile,
    sla_buckets,
    summarise,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")


def test_percentiles_are_nearest_rank_samples():
    assert median([5, 1, 3]) == 3
    assert median([1, 2, 3, 4]) == 2  # the lower middle sample, not 2.5
    assert percentile(list(range(1, 11)), 0.9) == 9
    assert percentile(list(range(1, 101)), 0.9) == 90
    assert percentile([7], 0.9) == 7
    assert median([]) is None
    assert summarise([30, 10, 20]).count == 3


def test_sla_buckets_split_at_one_minute_five_minutes_an_hour_and_a_day():
    assert sla_buckets([0, 59, 60, 299, 300, 3599, 3600, 86_399, 86_400, 10**6]) == [2, 2, 2, 2, 2]


def test_change_is_relative_and_absent_without_a_previous_figure():
    assert change(15, 10) == 0.5
    assert change(5, 10) == -0.5
    assert change(5, 0) is None and change(None, 3) is None


def shanghai(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=SHANGHAI)


def test_business_time_skips_the_night():
    calendar = BusinessCalendar(SHANGHAI)  # Monday to Friday, 9:00-18:00
    # Monday 2 March 17:30 to Tuesday 9:45: half an hour, then three quarters.
    assert calendar.seconds(shanghai(2, 17, 30), shanghai(3, 9, 45)) == 75 * 60


def test_business_time_skips_a_weekend_and_a_holiday():
    calendar = BusinessCalendar(SHANGHAI, holidays=[date(2026, 3, 9)])
    # Friday 6 March 17:00 to Tuesday 10 March 10:00 (Monday is a holiday): 1 h + 1 h.
    assert calendar.seconds(shanghai(6, 17), shanghai(10, 10)) == 2 * 3600
    # Entirely within the weekend: nothing.
    assert calendar.seconds(shanghai(7, 10), shanghai(8, 23)) == 0


def test_business_time_follows_the_time_zone_not_utc():
    calendar = BusinessCalendar(SHANGHAI)
    # 00:30 UTC on Monday is 08:30 in Shanghai: the first half hour is before opening.
    start = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)
    end = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    assert calendar.seconds(start, end) == 3600


def test_business_time_on_the_day_a_zone_springs_forward_is_real_time():
    # America/New_York moves 02:00 to 03:00 on Sunday 8 March 2026.
    sunday_morning = [None] * 6 + [(time(0), time(12))]
    calendar = BusinessCalendar(NEW_YORK, spans=sunday_morning)
    start = datetime(2026, 3, 8, 0, 0, tzinfo=NEW_YORK)
    end = datetime(2026, 3, 8, 12, 0, tzinfo=NEW_YORK)
    assert calendar.seconds(start, end) == 11 * 3600
    calendar.prepare(start, end)
    assert calendar.seconds(start, end) == 11 * 3600


def test_the_prepared_table_gives_the_same_answers_as_walking_the_days():
    walking = BusinessCalendar(SHANGHAI, holidays=[date(2026, 3, 4)])
    prepared = BusinessCalendar(SHANGHAI, holidays=[date(2026, 3, 4)])
    prepared.prepare(shanghai(1, 0), shanghai(20, 0))
    moments = [shanghai(day, hour, 17) for day in range(1, 20) for hour in (3, 9, 12, 18, 23)]
    for start in moments[::7]:
        for end in moments[::5]:
            assert prepared.seconds(start, end) == walking.seconds(start, end)


# --- timelines: rows as the message table holds them -------------------------------------------

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def row(n: int, minute: float, kind: str = "letter", **fields) -> dict:
    values = {
        "id": n,
        "kind": kind,
        "msg_type": 1,
        "is_sender": False,
        "delivery": "received",
        "created_at": at(minute),
        "author_id": None,
        "activity": "",
        "activity_user_id": None,
    }
    values.update(fields)
    return values


def viewer(n, minute):
    return row(n, minute)


def agent_reply(n, minute, agent=7, delivery="sent"):
    return row(n, minute, is_sender=True, author_id=agent, delivery=delivery)


def phone_reply(n, minute):
    return row(n, minute, is_sender=True)


def activity(n, minute, what, author=7, target=None):
    return row(n, minute, kind="activity", activity=what, author_id=author, activity_user_id=target)


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


def test_first_response_and_reply_times_follow_the_definitions():
    timeline = fold(
        1,
        1,
        [
            viewer(1, 0),
            viewer(2, 1),  # still waiting since minute 0
            agent_reply(3, 4),  # first response: 4 min; reply time 4 min
            viewer(4, 10),
            agent_reply(5, 12),  # reply time 2 min
            agent_reply(6, 13),  # answers nothing new: no sample
            activity(7, 20, "resolved"),
        ],
    )
    (episode,) = timeline.changed.values()
    assert episode.first_letter_at == at(0) and episode.first_response_at == at(4)
    assert episode.first_responder_id == 7 and episode.resolved_at == at(20)
    assert (episode.incoming, episode.replies) == (3, 3)
    waits = [(r.sent_at - r.waited_from) for r in timeline.replies if r.waited_from]
    assert [w.total_seconds() for w in waits] == [240, 120]


def test_system_notices_notes_activity_and_undelivered_replies_are_ignored():
    timeline = fold(
        1,
        1,
        [
            viewer(1, 0),
            row(2, 1, msg_type=10000, is_sender=True),  # system notice
            row(3, 2, msg_type=10002),  # recall
            row(4, 3, kind="note", author_id=7),
            activity(5, 4, "assigned", target=7),
            agent_reply(6, 5, delivery="sending"),
            agent_reply(7, 6, delivery="failed"),
            agent_reply(8, 9),
        ],
    )
    (episode,) = timeline.changed.values()
    assert episode.incoming == 1 and episode.first_response_at == at(9)
    assert [r.message_id for r in timeline.replies] == [8]


def test_a_letter_after_resolution_starts_a_new_episode_and_so_does_a_reopen():
    timeline = fold(
        1,
        1,
        [
            viewer(1, 0),
            phone_reply(2, 2),
            activity(3, 5, "resolved"),
            viewer(4, 30),  # reopens: a new episode
            activity(5, 31, "opened", author=None),  # sync's automatic line: no new episode
            agent_reply(6, 33),
            activity(7, 40, "resolved"),
            activity(8, 50, "opened"),  # reopened by hand: a third episode, no letter yet
            agent_reply(9, 52),  # nobody was waiting: no first response
        ],
    )
    episodes = sorted(timeline.changed.values(), key=lambda e: e.opened_at)
    assert [e.opened_at for e in episodes] == [at(0), at(30), at(50)]
    assert episodes[0].first_responder_id is None  # the account, from its phone
    assert episodes[0].first_response_at == at(2) and episodes[0].resolved_at == at(5)
    assert episodes[1].first_response_at == at(33) and episodes[1].resolved_at == at(40)
    assert episodes[2].first_letter_at is None and episodes[2].first_response_at is None


def test_the_assignee_at_resolution_is_the_one_then():
    timeline = fold(
        1,
        1,
        [
            viewer(1, 0),
            activity(2, 1, "assigned", target=8),
            activity(3, 2, "unassigned"),
            activity(4, 3, "assigned", target=9),
            activity(5, 4, "resolved", author=7),
            activity(6, 5, "assigned", target=8),
        ],
    )
    (episode,) = timeline.changed.values()
    assert (episode.resolver_id, episode.assignee_id) == (7, 9)


def test_events_of_one_second_go_letter_then_reply_then_status():
    timeline = fold(1, 1, [activity(1, 0, "resolved"), phone_reply(2, 0), viewer(3, 0)])
    (episode,) = timeline.changed.values()
    assert episode.first_response_at == at(0) and episode.resolved_at == at(0)


def test_business_time_between_timestamps_matches_the_datetime_answer():
    calendar = BusinessCalendar(NEW_YORK, holidays=[date(2026, 3, 10)])
    calendar.prepare(datetime(2026, 3, 1, tzinfo=NEW_YORK), datetime(2026, 3, 20, tzinfo=NEW_YORK))
    moments = [
        datetime(2026, 3, day, hour, 7, tzinfo=NEW_YORK)
        for day in range(1, 25)
        for hour in (1, 9, 17)
    ]
    for start in moments[::5]:
        for end in moments[::4]:
            assert calendar.seconds_between(start.timestamp(), end.timestamp()) == pytest.approx(
                calendar.seconds(start, end)
            )
