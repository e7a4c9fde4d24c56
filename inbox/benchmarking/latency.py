"""Server time of the inbox's requests on the benchmark data set, in-process (Django's test client,
DEBUG off), as an agent who works on every account.

Every row of the tables is a Probe in PROBES: a name, the calls to make (a few distinct targets,
taken in turn) and optionally an untimed step before each call (a new letter through the sync
path, for the polls that answer a change). Add a row by appending a Probe. Each probe is timed
`repeat` times; its queries are counted in one more call, untimed (capturing SQL costs time).
"""

from __future__ import annotations

import math
import random
import secrets
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from accounts.models import Account
from accounts.sandbox import letter_item
from inbox import browse
from inbox.benchmarking.dataset import TIMING_AGENT, Plan
from inbox.models import Message, Session
from inbox.payloads import parse_sync_page
from inbox.sync import account_lease, store_page

PLAIN_STATIC_STORAGE = "django.contrib.staticfiles.storage.StaticFilesStorage"


@dataclass(frozen=True)
class Call:
    path: str
    htmx: bool = False
    expect: int = 200
    # A POST's form fields (a bulk action); None for a GET.
    data: dict | None = None


def _send(client: Client, call: Call):
    headers = {"HX-Request": "true"} if call.htmx else {}
    if call.data is not None:
        return client.post(call.path, call.data, headers=headers)
    return client.get(call.path, headers=headers)


@dataclass(frozen=True)
class Probe:
    name: str
    calls: Callable[[Targets], list[Call]]
    # Untimed, before each call: may change the data and returns the call to make.
    before: Callable[[Targets, Call], Call] | None = None
    table: str = "requests"
    kind: str = ""  # the search table's "what" column


@dataclass
class Timing:
    probe: Probe
    seconds: list[float] = field(default_factory=list)
    queries: int = 0
    hits: int | None = None

    @property
    def p50(self) -> float:
        return statistics.median(self.seconds) * 1000

    @property
    def p95(self) -> float:
        ordered = sorted(self.seconds)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)] * 1000


class Targets:
    """What the calls point at, looked up once and only when a probe asks."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.user = get_user_model().objects.get(username=TIMING_AGENT)
        self.rng = random.Random(plan.spec.seed + 4)

    @cached_property
    def accounts(self) -> list[Account]:
        return list(Account.objects.filter(app_id__startswith="bench-shop-").order_by("app_id"))

    def _sessions(self, plans) -> list[Session]:
        by_id = {
            s.msg_session_id: s
            for s in Session.objects.filter(msg_session_id__in=[p.msg_session_id for p in plans])
        }
        return [by_id[p.msg_session_id] for p in plans if p.msg_session_id in by_id]

    @cached_property
    def small(self) -> list[Session]:
        """A few sessions of 11 letters (or the nearest size the plan has)."""
        sizes = sorted(
            {s.size for s in self.plan.sessions if s.size <= 20}, key=lambda n: abs(n - 11)
        )
        return self._sessions(self.plan.sessions_of_size(sizes[0])[:5])

    @cached_property
    def big(self) -> Session:
        return self._sessions([self.plan.biggest()])[0]

    def list_cursors(self, page: int, count: int = 3) -> list[str]:
        """Load-more cursors of the All list at `page` (50 rows a page) and the next pages."""
        ordered = browse.visible_sessions(self.user).order_by("-last_message_at", "-pk")
        total = ordered.count()
        cursors = []
        for offset in range(count):
            row = min((page + offset - 1) * browse.SESSION_PAGE, total) - 1
            cursors.append(browse.session_key(ordered[max(row, 0)]))
        return cursors

    def thread_depths(self, session: Session, depths: list[int]) -> list[int]:
        """Message ids `depth` messages from the newest end of the thread."""
        newest_first = session.messages.order_by("-created_at", "-id").values_list("pk", flat=True)
        size = newest_first.count()
        return [newest_first[min(depth, size - 1)] for depth in depths]

    def since_now(self) -> str:
        return str(browse.to_micros(timezone.now()))

    def new_letter(self, session: Session) -> None:
        """One incoming letter for `session` through store_page, as the worker stores it."""
        account = session.account
        peer = session.peer_username
        # Not from the seeded generator: a rerun on the same data set would draw the same ids,
        # which are stored already, so its "new" letters would change nothing.
        new_msg_id = 2**63 + secrets.randbelow(2**63)
        item = letter_item(
            seq=new_msg_id % 10**9,
            new_msg_id=new_msg_id,
            me=session.my_username,
            peer=peer,
            is_sender=False,
            msg_type=1,
            content="在吗？还有一个问题想问",
            create_time=int(time.time()),
            msg_session_id=session.msg_session_id,
        )
        expected = Account.objects.values_list("key_buff", flat=True).get(pk=account.pk)
        # The cursor stays where the build left it: this letter is news, not a page of history.
        page = parse_sync_page({"list": [item], "keyBuff": expected})
        with account_lease(account) as lease:
            store_page(account, page, lease_token=lease, expected=expected)


def _list(params: dict | None = None, htmx: bool = True) -> Call:
    return Call("/" + (f"?{urlencode(params)}" if params else ""), htmx=htmx)


def _thread(session: Session, htmx: bool = True, **params) -> Call:
    query = f"?{urlencode(params)}" if params else ""
    return Call(f"{session.get_absolute_url()}{query}", htmx=htmx)


def _idle_list_poll(t: Targets, call: Call) -> Call:
    return Call(f"/poll/?since={t.since_now()}", expect=204)


def _list_poll_after_letter(t: Targets, call: Call) -> Call:
    since = t.since_now()
    t.new_letter(t.rng.choice(t.small))
    return Call(f"/poll/?since={since}")


def _idle_thread_poll(t: Targets, call: Call) -> Call:
    return Call(f"{call.path}poll/?since={t.since_now()}&tail=1", expect=204)


def _thread_poll_after_letter(t: Targets, call: Call) -> Call:
    session = Session.objects.select_related("account").get(pk=int(call.path.split("/")[2]))
    since = t.since_now()
    t.new_letter(session)
    return Call(f"{call.path}poll/?since={since}&tail=1")


def _search(query: str) -> Callable[[Targets], list[Call]]:
    return lambda t: [Call(f"/search/?{urlencode({'q': query})}", htmx=True)]


PROBES: list[Probe] = [
    Probe("/ list fragment, All", lambda t: [_list()]),
    Probe("/ full page, All", lambda t: [_list(htmx=False)]),
    Probe(
        "load more, page 50",
        lambda t: [_list({"before": cursor}) for cursor in t.list_cursors(50)],
    ),
    Probe(
        "load more, page 1000 (or the last)",
        lambda t: [_list({"before": cursor}) for cursor in t.list_cursors(1000)],
    ),
    Probe("tab Unread", lambda t: [_list({"view": "unread"})]),
    Probe("tab Unassigned", lambda t: [_list({"view": "unassigned"})]),
    Probe("tab Resolved", lambda t: [_list({"view": "resolved"})]),
    Probe("tab Mine", lambda t: [_list({"view": "mine"})]),
    Probe(
        "account filter",
        lambda t: [_list({"account": account.pk}) for account in t.accounts],
    ),
    Probe("thread open (HX), 11 letters", lambda t: [_thread(s) for s in t.small]),
    Probe("thread open (HX), biggest session", lambda t: [_thread(t.big)]),
    Probe("thread, full page", lambda t: [_thread(s, htmx=False) for s in t.small]),
    Probe(
        "load older, biggest session at depth",
        lambda t: [
            _thread(t.big, before=pk) for pk in t.thread_depths(t.big, [3000, 6000, 9000, 11000])
        ],
    ),
    Probe(
        "search hit around=, biggest session",
        lambda t: [_thread(t.big, around=pk) for pk in t.thread_depths(t.big, [2000, 7000, 11000])],
    ),
    Probe("list poll, idle", lambda t: [Call("/poll/")], before=_idle_list_poll),
    Probe(
        "list poll after 1 new letter", lambda t: [Call("/poll/")], before=_list_poll_after_letter
    ),
    Probe(
        "thread poll, idle",
        lambda t: [_thread(s, htmx=False) for s in t.small],
        before=_idle_thread_poll,
    ),
    Probe(
        "thread poll after 1 new letter",
        lambda t: [_thread(s, htmx=False) for s in t.small],
        before=_thread_poll_after_letter,
    ),
    # The report page (issue 10): every figure from the report facts, never the message table.
    Probe("reports, 30 days, all accounts", lambda t: [Call("/reports/?range=30d")]),
    Probe(
        "reports (HX), 30 days, business hours",
        lambda t: [Call("/reports/?range=30d&time=business", htmx=True)],
    ),
    Probe(
        "reports (HX), 7 days, one account",
        lambda t: [Call(f"/reports/?range=7d&account={a.pk}", htmx=True) for a in t.accounts],
    ),
]


def _viewer_panels(sessions: list[Session]) -> list[Call]:
    """The profile panel of these sessions' viewers, after making sure the data set has its
    viewers (idempotent: rebuild_viewers links only what is not linked yet; a data set built
    before the viewers app has none), a few notes on each probed viewer, and no avatar download
    to queue (the set's peers have no pictures: marked as tried, as a day-old failure is)."""
    from inbox.viewers import linking
    from inbox.viewers.models import Viewer, ViewerNote

    linking.rebuild_viewers()
    viewers = Viewer.objects.filter(links__session__in=sessions)
    viewers.filter(avatar_fetched_at__isnull=True).update(
        avatar_fetched_at=timezone.now(), avatar_error="benchmark data set: no pictures"
    )
    author = get_user_model().objects.get(username=TIMING_AGENT)
    for viewer in viewers.exclude(notes__isnull=False):
        ViewerNote.objects.bulk_create(
            ViewerNote(viewer=viewer, author=author, text=f"benchmark note {number}")
            for number in range(3)
        )
    return [Call(f"/sessions/{session.pk}/viewer/", htmx=True) for session in sessions]


PROBES += [
    Probe("viewer panel (HX), 11-letter sessions", lambda t: _viewer_panels(t.small)),
    Probe("viewer panel (HX), biggest session", lambda t: _viewer_panels([t.big])),
]


def _label_lists(pick: str, page: int | None = None) -> Callable[[Targets], list[Call]]:
    """The list filtered by the benchmark's common (~30%) or rare (~0.5%) label, its first page
    or a load-more at `page`; the labels are put on the data set first (idempotent, untimed)."""
    from inbox.benchmarking import labels

    def calls(t: Targets) -> list[Call]:
        label = getattr(labels.ensure_labels(), pick)
        cursor = labels.cursor_at(label, t.user, page) if page else None
        return [_list({"label": label.pk, **({"before": cursor} if cursor else {})})]

    return calls


def _label_picker(t: Targets) -> list[Call]:
    from inbox.benchmarking import labels

    labels.ensure_labels()
    return [Call(f"/sessions/{s.pk}/labels/", htmx=True) for s in t.small]


PROBES += [
    Probe("label filter, common label", _label_lists("common")),
    Probe("label filter, rare label", _label_lists("rare")),
    Probe("label filter load more, common label, page 200", _label_lists("common", 200)),
    Probe("label filter load more, rare label, last page", _label_lists("rare", 1000)),
    Probe("label picker (HX)", _label_picker),
]


def _bulk_resolve(t: Targets) -> list[Call]:
    """Resolve the first 50 rows of the All list in one bulk action (reopened, untimed, before
    each call by _reopen_bulk, so that every call changes all 50)."""
    rows, _ = browse.session_page(t.user, browse.ListFilter(), t.accounts)
    ids = [str(session.pk) for session in rows[: browse.SESSION_PAGE]]
    return [Call("/organize/bulk/", htmx=True, data={"sessions": ids, "action": "resolve"})]


def _reopen_bulk(t: Targets, call: Call) -> Call:
    Session.objects.filter(pk__in=call.data["sessions"]).update(
        status=Session.Status.OPEN, snoozed_until=None, updated_at=timezone.now()
    )
    return call


def _list_with_saved_views(t: Targets) -> list[Call]:
    """The list with 10 saved views in the sidebar (made once, idempotent): personal and
    shared, by account, status, assignee and unread, and one by label when the set has labels."""
    from inbox.organize.models import SavedView

    filters = [
        {"view": "open"},
        {"view": "open", "assignee": "me"},
        {"view": "unassigned", "unread": True},
        {"view": "pending", "shared": True},
        {"view": "resolved", "account": t.accounts[0]},
        {"view": "mine", "unread": True, "account": t.accounts[1 % len(t.accounts)]},
        {"view": "snoozed", "shared": True},
        {"view": "all", "assignee": "none", "account": t.accounts[2 % len(t.accounts)]},
        {"view": "unread", "shared": True},
        {"view": "all", "assignee": str(t.user.pk)},
    ]
    for number, fields in enumerate(filters):
        SavedView.objects.get_or_create(
            owner=t.user, name=f"benchmark view {number}", defaults=fields
        )
    return [_list()]


PROBES += [
    Probe("bulk resolve, 50 sessions (HX POST)", _bulk_resolve, before=_reopen_bulk),
    Probe("list fragment, 10 saved views in the sidebar", _list_with_saved_views),
]


def _suggestion_strips(t: Targets) -> list[Call]:
    """The composer's suggested replies for sessions waiting on a viewer's question; the data
    set's pairs are made first if it has none (inbox.suggestions.benchmarking)."""
    from inbox.suggestions.benchmarking import ensure_pairs, waiting_sessions

    ensure_pairs(t.accounts)
    return [
        Call(f"{session.get_absolute_url()}suggestions/", htmx=True)
        for session in waiting_sessions(t.accounts, 5)
    ]


# Suggested replies (issue 11): ranked from the account's newest pairs, whatever the history.
PROBES.append(Probe("suggestions strip (HX)", _suggestion_strips))

SEARCHES = [
    ("货", "1 character, common"),
    ("鑫", "1 character, rare"),
    ("发货", "2 characters, common"),
    ("退税", "2 characters, rare"),
    ("保温杯", "3 characters, common"),
    ("紫砂壶", "3 characters, rare"),
    ("尽快发货", "4 characters, common"),
    ("翡翠手镯", "4 characters, rare"),
    ("discount", "English word, common"),
    ("invoice", "English word, rare"),
    ("王小明", "nickname"),
    ("Lily", "nickname, Latin"),
    ("没有这个词", "no hit"),
]
PROBES += [
    Probe(f"search {query}", _search(query), table="search", kind=kind) for query, kind in SEARCHES
]


def _threads_with_stored_thumbnails(t: Targets) -> list[Call]:
    """Small threads with image letters and the biggest one, every image letter on their
    latest page with its thumbnail stored (idempotent, untimed): the steady state of a thread
    opened before."""
    from inbox.benchmarking import pictures

    sessions = [*_small_threads_with_images(t), t.big]
    pictures.ensure_thumbnails(sessions)
    return [_thread(session) for session in sessions]


def _small_threads_with_images(t: Targets) -> list[Session]:
    """Up to five small threads with image letters on their latest page (other probes' writes,
    activity lines, may have pushed them off the 11-letter ones')."""
    from inbox.benchmarking import pictures

    small = sorted((s for s in t.plan.sessions if 8 <= s.size <= 30), key=lambda s: s.size)
    return [s for s in t._sessions(small[:60]) if pictures.latest_image_letters([s])][:5]


def _threads_with_image_letters(t: Targets) -> list[Call]:
    return [_thread(session) for session in _small_threads_with_images(t)]


def _thumbnails_never_asked_for(t: Targets, call: Call) -> Call:
    """Before each call: the thread's thumbnails unclaimed, so that the open claims them and
    queues their downloads (to whatever broker CELERY_BROKER_URL names)."""
    from inbox.benchmarking import pictures

    pictures.forget_thumbnails(int(call.path.split("/")[2]))
    return call


PROBES += [
    Probe("thread open (HX), thumbnails stored", _threads_with_stored_thumbnails),
    Probe(
        "thread open (HX), first open queues thumbnails",
        _threads_with_image_letters,
        before=_thumbnails_never_asked_for,
    ),
]


def _bell(t: Targets) -> list[Call]:
    """The bell of an agent with ~20,000 notifications, ~10,000 unread (made once, untimed)."""
    from inbox.benchmarking import team

    team.ensure_notifications()
    return [Call("/team/notifications/", htmx=True)]


def _bell_poll_idle(t: Targets, call: Call) -> Call:
    from inbox.benchmarking import team

    return Call(f"/team/notifications/poll/?after={team.newest_id(t.user)}")


def _bell_poll_after_news(t: Targets, call: Call) -> Call:
    from inbox.benchmarking import team

    after = team.newest_id(t.user)
    team.add_notifications(t.user, 3)
    return Call(f"/team/notifications/poll/?after={after}")


def _mention_candidates(t: Targets) -> list[Call]:
    return [Call(f"/team/sessions/{s.pk}/members/?q=bench", htmx=True) for s in t.small]


PROBES += [
    Probe("bell dropdown (HX), 20,000 notifications", _bell),
    Probe("bell count poll, idle", _bell, before=_bell_poll_idle),
    Probe("bell count poll, 3 new", _bell, before=_bell_poll_after_news),
    Probe("mention suggestions (JSON)", _mention_candidates),
]


def run(plan: Plan, *, repeat: int, only: str = "", progress=None) -> dict[str, list[Timing]]:
    """Time every probe whose name contains `only`; the timings by table."""
    targets = Targets(plan)
    client = Client()
    client.force_login(targets.user)
    # The live heartbeat's tokens are bound to the browser session they were issued to.
    targets.session_cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    probes = [probe for probe in PROBES if only in probe.name]
    advance = progress("timing requests", len(probes)) if progress else (lambda n: None)
    tables: dict[str, list[Timing]] = {}
    # A production setup serves hashed static names from a manifest that collectstatic writes;
    # plain names cost the same to render and need no collectstatic first.
    storages = {**settings.STORAGES, "staticfiles": {"BACKEND": PLAIN_STATIC_STORAGE}}
    with (
        override_settings(DEBUG=False, ALLOWED_HOSTS=["testserver"], STORAGES=storages),
        warnings.catch_warnings(),
    ):
        # WhiteNoise warns once when STATIC_ROOT was never collected: true, and beside the point.
        warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
        for probe in probes:
            timing = Timing(probe)
            calls = probe.calls(targets)
            # One untimed warm-up call, whose queries are counted.
            timing.queries = _count_queries(client, targets, probe, calls[0])
            for number in range(repeat):
                call = calls[number % len(calls)]
                if probe.before:
                    call = probe.before(targets, call)
                started = time.perf_counter()
                response = _send(client, call)
                timing.seconds.append(time.perf_counter() - started)
                _check(probe, call, response)
            if probe.table == "search":
                timing.hits = _hits(targets, probe.name.removeprefix("search "))
            tables.setdefault(probe.table, []).append(timing)
            advance(1)
    return tables


def _count_queries(client: Client, targets: Targets, probe: Probe, call: Call) -> int:
    if probe.before:
        call = probe.before(targets, call)
    with CaptureQueriesContext(connection) as queries:
        response = _send(client, call)
    _check(probe, call, response)
    return len(queries)


def _check(probe: Probe, call: Call, response) -> None:
    if response.status_code != call.expect:
        raise RuntimeError(
            f"{probe.name}: GET {call.path} answered {response.status_code}, expected {call.expect}"
        )


def _hits(targets: Targets, query: str) -> int:
    """All text letters and notes the user may see that contain `query` (a full count)."""
    return (
        Message.objects.filter(
            msg_type=Message.Type.TEXT,
            account__in=targets.accounts,
            content__icontains=query,
        )
        .exclude(kind=Message.Kind.ACTIVITY)
        .count()
    )


def format_tables(tables: dict[str, list[Timing]], plan: Plan, repeat: int) -> list[str]:
    lines = [
        f"{plan.spec.messages:,} messages, {plan.spec.sessions:,} sessions, "
        f"{plan.spec.accounts} accounts on {_describe_database()}; as {TIMING_AGENT} (member "
        f"of every account); {repeat} timed runs per request, DEBUG off, server time in-process.",
        "",
    ]
    requests = tables.get("requests", [])
    if requests:
        width = max(len(t.probe.name) for t in requests)
        lines.append(f"{'request':<{width}} | {'p50 ms':>7} | {'p95 ms':>7} | {'queries':>7}")
        lines.append("-" * (width + 32))
        for timing in requests:
            lines.append(
                f"{timing.probe.name:<{width}} | {timing.p50:>7.1f} | {timing.p95:>7.1f} | "
                f"{timing.queries:>7}"
            )
        lines.append("")
    searches = tables.get("search", [])
    if searches:
        width = max(len(t.probe.kind) for t in searches)
        lines.append(
            f"{'search':<12} | {'what':<{width}} | {'hits':>8} | {'p50 ms':>7} | "
            f"{'p95 ms':>7} | {'queries':>7}"
        )
        lines.append("-" * (width + 60))
        for timing in searches:
            query = timing.probe.name.removeprefix("search ")
            # Wide characters take two columns on a terminal.
            pad = 12 - sum(2 if ord(c) > 0x2E80 else 1 for c in query)
            lines.append(
                f"{query}{' ' * max(pad, 0)} | {timing.probe.kind:<{width}} | "
                f"{timing.hits:>8,} | {timing.p50:>7.1f} | {timing.p95:>7.1f} | "
                f"{timing.queries:>7}"
            )
    return lines


def _describe_database() -> str:
    connection.ensure_connection()
    if connection.vendor == "postgresql":
        version = connection.pg_version
        return f"PostgreSQL {version // 10000}.{version % 10000}"
    return connection.display_name


def _heartbeat(with_thread: bool) -> Callable[[Targets], list[Call]]:
    """The live heartbeat of a tab (no conversation open: 204) or of a tab showing a
    conversation two colleagues also have open, one of them typing (the header's line)."""

    def calls(t: Targets) -> list[Call]:
        from django.test import RequestFactory

        from inbox.live import tokens

        request = RequestFactory().get("/")
        request.COOKIES[settings.SESSION_COOKIE_NAME] = t.session_cookie
        session = t.small[0] if with_thread else None
        token = tokens.issue(request, t.user, session.pk if session else None)
        data = {"token": token, "tab": "bench-probe-tab", "active": "1"}
        return [Call("/live/heartbeat/", data=data, expect=200 if session else 204)]

    return calls


def _agent_online(t: Targets, call: Call) -> Call:
    """The timed heartbeats are an online agent's: the one that brings an agent online may
    hand them waiting conversations (the team's auto-assignment, a query or two), once."""
    from inbox.live import presence

    presence.heartbeat(t.user.pk, "bench", "bench-other-tab", active=True)
    return call


def _colleagues_in_thread(t: Targets, call: Call) -> Call:
    """Two colleagues in the probed conversation, one typing (their entries last seconds)."""
    from inbox.live import presence

    _agent_online(t, call)
    session_id = t.small[0].pk
    presence.heartbeat(-1, "王芳", "bench-colleague-1", active=True, session_id=session_id)
    presence.heartbeat(
        -2, "张伟", "bench-colleague-2", active=True, session_id=session_id, typing=True
    )
    return call


PROBES += [
    Probe("live heartbeat, no conversation", _heartbeat(with_thread=False), before=_agent_online),
    Probe(
        "live heartbeat, conversation with 2 others",
        _heartbeat(with_thread=True),
        before=_colleagues_in_thread,
    ),
]


def _threads_with_share_cards(t: Targets) -> list[Call]:
    """Threads of about 11 letters with shared videos or links among them, their cards filled in
    (idempotent, untimed: a data set built before share cards has none)."""
    from inbox.card_backfill import refresh_messages

    candidates = [plan.msg_session_id for plan in t.plan.sessions_of_size(11)[:400]]
    session_ids = list(
        Message.objects.filter(msg_type=Message.Type.APP, session__msg_session_id__in=candidates)
        .values_list("session_id", flat=True)
        .distinct()[:5]
    )
    shares = Message.objects.filter(session_id__in=session_ids, msg_type=Message.Type.APP)
    refresh_messages(list(shares))
    sessions = Session.objects.filter(pk__in=session_ids).order_by("pk")
    return [_thread(session) for session in sessions] or [_thread(s) for s in t.small]


PROBES.append(Probe("thread open (HX), share cards", _threads_with_share_cards))
