"""Report facts kept as conversations happen: episodes, replies by people, letters per hour.

Every fact is a function of a session's timeline, the session's messages in the order
(created_at, rank, id) where rank puts a viewer letter before a reply before a status or
assignment line of the same second. `fold()` walks such a timeline; the same walk serves both
ways of keeping the facts:

- incrementally, from the hooks below, called by sync, the reply services and the status
  services inside their own transactions: events newer than everything folded so far (the
  session's TimelineState) continue the fold where it stopped, with a few queries per page or
  action whatever the session's length;
- by replay, when an event arrives out of order (a letter written before a resolution that sync
  brings in after it, a reply whose send was answered after the viewer wrote again, an echo
  merged into its reply): the session's facts are recomputed from its messages.

`rebuild()` replays every session; tests check that rebuild == incremental after random
operation sequences.

What counts (the README's definitions): a viewer letter is an upstream letter the account
received that is not a system notice (10000) or recall (10002); a reply is a letter the account
sent that is not one either, and was delivered: sent from here (by its author, an agent), or
written on the phone (sync brings it in; it counts for the account, not an agent). Notes and
activity lines are never letters; a reply still sending or failed is not one yet.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import transaction

from inbox.models import Message, Session
from inbox.reports import fact_rows
from inbox.reports.fact_rows import EpisodeRow, ReplyRow
from inbox.reports.models import Episode, LetterHour, ReplyFact, TimelineState

NOT_LETTERS = (Message.Type.SYSTEM, Message.Type.RECALL)
COUNTED_DELIVERY = (Message.Delivery.RECEIVED, Message.Delivery.SENT)

INCOMING, REPLY, STATUS = 0, 1, 2  # ranks within one second
RESOLVE, REOPEN, ASSIGN = "resolve", "reopen", "assign"


@dataclass(frozen=True, slots=True)
class Event:
    at: datetime
    rank: int
    action: str = ""  # for STATUS: RESOLVE, REOPEN or ASSIGN
    user_id: int | None = None  # the replying agent, the resolver, or the new assignee
    message_id: int | None = None

    @property
    def key(self) -> tuple[datetime, int]:
        return (self.at, self.rank)


def event_of(row: dict) -> Event | None:
    """The event a message row makes on the timeline, or None (notes, system notices, replies
    not delivered, activity lines that change nothing reports count)."""
    kind = row["kind"]
    if kind == Message.Kind.LETTER:
        if row["msg_type"] in NOT_LETTERS:
            return None
        if not row["is_sender"]:
            return Event(row["created_at"], INCOMING, message_id=row["id"])
        if row["delivery"] not in COUNTED_DELIVERY:
            return None
        return Event(row["created_at"], REPLY, user_id=row["author_id"], message_id=row["id"])
    if kind == Message.Kind.ACTIVITY:
        activity = row["activity"]
        if activity == Message.Activity.RESOLVED:
            return Event(row["created_at"], STATUS, RESOLVE, row["author_id"], row["id"])
        if activity == Message.Activity.OPENED:
            return Event(row["created_at"], STATUS, REOPEN, row["author_id"], row["id"])
        if activity == Message.Activity.ASSIGNED:
            return Event(row["created_at"], STATUS, ASSIGN, row["activity_user_id"], row["id"])
        if activity == Message.Activity.UNASSIGNED:
            return Event(row["created_at"], STATUS, ASSIGN, None, row["id"])
    return None


EVENT_COLUMNS = (
    "id",
    "kind",
    "msg_type",
    "is_sender",
    "delivery",
    "created_at",
    "author_id",
    "activity",
    "activity_user_id",
)


@dataclass
class Timeline:
    """A session's fold: its latest episode, its assignee, and what the fold made or changed."""

    session_id: int
    account_id: int
    episode: EpisodeRow | None = None
    assignee_id: int | None = None
    last_key: tuple[datetime, int] | None = None
    changed: dict[int, EpisodeRow] = field(default_factory=dict)  # by id(), new ones included
    replies: list[ReplyRow] = field(default_factory=list)

    def in_order(self, event: Event) -> bool:
        """Whether `event` continues the fold as replay would: strictly after the last event,
        or a viewer letter in the same second as one (their order changes nothing)."""
        if self.last_key is None or event.key > self.last_key:
            return True
        return event.key == self.last_key and event.rank == INCOMING

    def apply(self, event: Event) -> None:
        episode = self.episode
        is_open = episode is not None and episode.resolved_at is None
        if event.rank == INCOMING:
            if not is_open:
                episode = self._open(event.at)
            if episode.first_letter_at is None:
                episode.first_letter_at = event.at
            if episode.awaiting_since is None:
                episode.awaiting_since = event.at
            episode.incoming += 1
            self._touch(episode)
        elif event.rank == REPLY:
            waited_from = episode.awaiting_since if is_open else None
            self.replies.append(
                ReplyRow(
                    event.message_id,
                    self.session_id,
                    self.account_id,
                    episode if is_open else None,
                    event.user_id,
                    event.at,
                    waited_from,
                )
            )
            if is_open:
                episode.replies += 1
                if waited_from is not None and episode.first_response_at is None:
                    episode.first_response_at = event.at
                    episode.first_responder_id = event.user_id
                episode.awaiting_since = None
                self._touch(episode)
        elif event.action == RESOLVE:
            if is_open:
                episode.resolved_at = event.at
                episode.resolver_id = event.user_id
                episode.assignee_id = self.assignee_id
                episode.awaiting_since = None
                self._touch(episode)
        elif event.action == REOPEN:
            if episode is not None and not is_open:
                self._open(event.at)
        elif event.action == ASSIGN:
            self.assignee_id = event.user_id
        self.last_key = max(self.last_key, event.key) if self.last_key else event.key

    def _open(self, at: datetime) -> EpisodeRow:
        self.episode = EpisodeRow(self.session_id, self.account_id, at)
        self._touch(self.episode)
        return self.episode

    def _touch(self, episode: EpisodeRow) -> None:
        self.changed[id(episode)] = episode


def fold(session_id: int, account_id: int, rows: Iterable[dict]) -> Timeline:
    """The session's facts from its message rows (any order; EVENT_COLUMNS)."""
    events = [event for event in map(event_of, rows) if event is not None]
    events.sort(key=lambda event: (event.at, event.rank, event.message_id or 0))
    timeline = Timeline(session_id, account_id)
    for event in events:
        timeline.apply(event)
    return timeline


# --- hooks: called inside the transaction of the change -----------------------------------------


def letters_stored(
    account_id: int, new_letters: list, reopened: list[Message], message_ids: dict[int, int]
) -> None:
    """Sync stored these upstream letters ((Session, Letter) pairs, just inserted, their rows'
    keys in `message_ids` by NewMsgId) and reopened sessions with these activity lines: viewer
    letters open or extend episodes, letters the account wrote on the phone are its replies."""
    if not new_letters:
        return
    hours: Counter = Counter()
    events: dict[int, list[Event]] = defaultdict(list)
    accounts: dict[int, int] = {}
    for session, letter in new_letters:
        if letter.msg_type in NOT_LETTERS:
            continue
        accounts[session.pk] = session.account_id
        if letter.is_sender:
            events[session.pk].append(
                Event(letter.created_at, REPLY, message_id=message_ids[letter.new_msg_id])
            )
        else:
            events[session.pk].append(Event(letter.created_at, INCOMING))
            hours[(account_id, hour_of(letter.created_at), "incoming")] += 1
    for line in reopened:
        accounts[line.session_id] = line.account_id
        events[line.session_id].append(
            Event(line.created_at, STATUS, REOPEN, line.author_id, line.pk)
        )
    _record(events, accounts, hours)


def replies_sent(replies: Iterable[Message]) -> None:
    """These replies composed here went out (the upstream took them, or sync adopted their echo)."""
    events: dict[int, list[Event]] = defaultdict(list)
    accounts: dict[int, int] = {}
    for reply in replies:
        if reply.msg_type in NOT_LETTERS:
            continue
        accounts[reply.session_id] = reply.account_id
        events[reply.session_id].append(
            Event(reply.created_at, REPLY, user_id=reply.author_id, message_id=reply.pk)
        )
    _record(events, accounts, Counter())


def activity_added(lines: Iterable[Message]) -> None:
    """Status and assignment lines just saved (a resolution, a reopen, a snooze running out).
    A resolution records the assignee of the line's session, as the caller holds it."""
    events: dict[int, list[Event]] = defaultdict(list)
    accounts: dict[int, int] = {}
    assignees: dict[int, int | None] = {}
    for line in lines:
        row = {name: getattr(line, name) for name in EVENT_COLUMNS}
        event = event_of(row)
        if event is not None:
            accounts[line.session_id] = line.account_id
            events[line.session_id].append(event)
            if event.action == RESOLVE:
                assignees[line.session_id] = line.session.assignee_id
    _record(events, accounts, Counter(), assignees)


def sessions_changed(session_ids: Iterable[int]) -> None:
    """Their messages changed other than by new events (an echo merged into its reply, a letter
    split from a reply wrongly taken for its echo): replay them."""
    ids = sorted(set(session_ids))
    if ids:
        hours: Counter = Counter()
        _replay(Session.objects.filter(pk__in=ids).only("pk", "account_id"), hours)
        fact_rows.add_to_hours(hours)


def _record(
    events: dict[int, list[Event]],
    accounts: dict[int, int],
    hours: Counter,
    assignees: dict[int, int | None] | None = None,
) -> None:
    """Fold new events into their sessions' facts: continue each session's fold when its events
    are in order, replay the session when not."""
    if not events:
        fact_rows.add_to_hours(hours)
        return
    states = fact_rows.timeline_states(list(events))
    # The assignee is what a resolution records; sync pages bring none, and skip the read.
    assignees = dict(assignees or {})
    resolving = [
        session_id
        for session_id, session_events in events.items()
        if session_id not in assignees and any(event.action == RESOLVE for event in session_events)
    ]
    if resolving:
        assignees.update(Session.objects.filter(pk__in=resolving).values_list("pk", "assignee_id"))
    timelines, replay = [], []
    for session_id, session_events in events.items():
        session_events.sort(key=lambda event: (event.at, event.rank, event.message_id or 0))
        last_key, episode = states.get(session_id, (None, None))
        timeline = Timeline(
            session_id,
            accounts[session_id],
            episode=episode,
            assignee_id=assignees.get(session_id),
            last_key=last_key,
        )
        if not all(_continues(timeline, event) for event in session_events):
            replay.append(session_id)
            continue
        timelines.append(timeline)
    _save(timelines, hours)
    if replay:
        _replay(Session.objects.filter(pk__in=replay).only("pk", "account_id"), hours)
    fact_rows.add_to_hours(hours)


def _continues(timeline: Timeline, event: Event) -> bool:
    if not timeline.in_order(event):
        return False
    timeline.apply(event)
    return True


def _replay(sessions: Iterable[Session], hours: Counter) -> None:
    """Recompute these sessions' facts from their messages."""
    sessions = list(sessions)
    ids = [session.pk for session in sessions]
    for account_id, sent_at in ReplyFact.objects.filter(session_id__in=ids).values_list(
        "account_id", "sent_at"
    ):
        hours[(account_id, hour_of(sent_at), "replies")] -= 1
    ReplyFact.objects.filter(session_id__in=ids).delete()
    TimelineState.objects.filter(session_id__in=ids).delete()
    Episode.objects.filter(session_id__in=ids).delete()
    rows: dict[int, list[dict]] = defaultdict(list)
    for row in (
        Message.objects.filter(session_id__in=ids)
        .exclude(kind=Message.Kind.NOTE)
        .values(*EVENT_COLUMNS, "session_id")
    ):
        rows[row["session_id"]].append(row)
    _save([fold(session.pk, session.account_id, rows[session.pk]) for session in sessions], hours)


def _save(timelines: list[Timeline], hours: Counter) -> None:
    """Write what these folds made: episodes (new and changed), replies, timeline states. On
    PostgreSQL each kind is one statement whatever the count (a sync page touches hundreds)."""
    episodes = [episode for timeline in timelines for episode in timeline.changed.values()]
    changed = [episode for episode in episodes if episode.pk is not None]
    # Each session's latest episode is written even when an event changed nothing in it (a
    # resolution of one already resolved): an action then costs the same statements whatever
    # state its facts are in.
    touched = {id(episode) for episode in episodes}
    changed += [
        timeline.episode
        for timeline in timelines
        if timeline.episode is not None
        and timeline.episode.pk is not None
        and id(timeline.episode) not in touched
    ]
    fact_rows.insert_episodes([episode for episode in episodes if episode.pk is None])
    fact_rows.update_episodes(changed)
    replies = [reply for timeline in timelines for reply in timeline.replies]
    for reply in replies:
        hours[(reply.account_id, hour_of(reply.sent_at), "replies")] += 1
    fact_rows.insert_replies(replies)
    fact_rows.upsert_states(
        [
            (
                timeline.session_id,
                timeline.last_key[0],
                timeline.last_key[1],
                timeline.episode.pk if timeline.episode else None,
            )
            for timeline in timelines
            if timeline.last_key is not None
        ]
    )


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


# --- rebuilding ---------------------------------------------------------------------------------


def rebuild_hours(account_id: int) -> None:
    """Recount an account's letters per hour from its messages (incoming) and reply facts."""
    LetterHour.objects.filter(account_id=account_id).delete()
    hours: Counter = Counter()
    incoming = (
        Message.objects.filter(account_id=account_id, kind=Message.Kind.LETTER, is_sender=False)
        .exclude(msg_type__in=NOT_LETTERS)
        .values_list("created_at", flat=True)
    )
    for created_at in incoming.iterator(chunk_size=5000):
        hours[(account_id, hour_of(created_at), "incoming")] += 1
    replies = ReplyFact.objects.filter(account_id=account_id).values_list("sent_at", flat=True)
    for sent_at in replies.iterator(chunk_size=5000):
        hours[(account_id, hour_of(sent_at), "replies")] += 1
    # One upsert per few thousand hours keeps each statement's parameters within limits.
    items = list(hours.items())
    for start in range(0, len(items), 2000):
        fact_rows.add_to_hours(Counter(dict(items[start : start + 2000])))


def session_batches(account_id: int, size: int = 500) -> Iterator[list[Session]]:
    last = 0
    while True:
        batch = list(
            Session.objects.filter(account_id=account_id, pk__gt=last)
            .order_by("pk")
            .only("pk", "account_id")[:size]
        )
        if not batch:
            return
        yield batch
        last = batch[-1].pk


def rebuild_sessions(sessions: list[Session]) -> None:
    """Replay these sessions' facts in one transaction (reply hours are recounted after)."""
    with transaction.atomic():
        _replay(sessions, Counter())
