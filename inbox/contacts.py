"""Peer nicknames from the upstream's contactList, so the inbox can show "王小明" rather than
v2_0600…@finder. Best effort: a lookup that fails is logged and the session keeps its user name."""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from django.db import connection, connections
from django.db.models import F, QuerySet
from django.utils import timezone

from accounts.client import VideosApiClient, VideosApiError
from accounts.models import Account
from inbox.bulk import bound_cursor
from inbox.models import Session
from inbox.payloads import clean_text
from inbox.services import my_identity
from inbox.sync import is_channels_name
from inbox.viewers import avatars as viewer_avatars

log = logging.getLogger(__name__)

NICKNAME_LENGTH = Session._meta.get_field("peer_nickname").max_length


# contactList answers for one peer per call (its queryInfo is one user name), so a backfill
# keeps this many calls in flight, each thread with its own HTTP connection per account.
LOOKUP_THREADS = 8
# Sessions read, looked up and written per round: one SELECT and one UPDATE each.
BATCH_SIZE = 500
# Processes a backfill command forks (PostgreSQL only). A process tops out near one core of
# requests' Python: two named 100,000 sessions in 70 s here, one in 148 s (benchmark_backfill).
LOOKUP_PROCESSES = min(4, os.cpu_count() or 1)


def fill_peer_nicknames(session_ids: Iterable[int]) -> int:
    """Look up each distinct peer of these sessions that has no nickname yet, one contactList
    call per peer, and store what the upstream knows. Returns how many sessions were named."""
    return backfill_nicknames(Session.objects.filter(pk__in=list(session_ids)))


def backfill_nicknames(
    sessions: QuerySet[Session],
    *,
    batch_size: int = BATCH_SIZE,
    threads: int = LOOKUP_THREADS,
    processes: int = 1,
    on_batch: Callable[[int, int], None] | None = None,
) -> int:
    """Name the peers of `sessions` that have no nickname yet, BATCH_SIZE sessions at a time in
    primary-key order (so memory stays flat and a peer the upstream does not know is asked once
    per batch): their distinct peers looked up `threads` at a time, then one UPDATE, which also
    bumps updated_at so open session lists pick the names up on their next poll.
    `on_batch(sessions, named)` follows each batch. Returns how many sessions were named.

    With `processes` > 1 (PostgreSQL, outside a transaction, where fork is available) each of
    that many forked processes names the sessions whose primary key falls to it (pk modulo
    `processes`): one process spends most of a call's time in requests' Python, under one GIL,
    and tops out near a core."""
    pending = sessions.filter(peer_nickname="").exclude(peer_username="").order_by("pk")
    # Inside a transaction the children would not see its rows (and closing the connection
    # to fork would end it): then, as on SQLite, the work stays in this process.
    forkable = connection.vendor == "postgresql" and not connection.in_atomic_block
    if processes > 1 and forkable and _can_fork():
        return _in_processes(pending, batch_size, threads, processes, on_batch)
    return _name_batches(pending, batch_size, threads, on_batch)


def _name_batches(
    pending: QuerySet[Session],
    batch_size: int,
    threads: int,
    on_batch: Callable[[int, int], None] | None,
) -> int:
    accounts: dict[int, Account] = {}
    named, last_pk = 0, 0
    with _Lookups(threads) as lookups:
        while True:
            batch = list(
                pending.filter(pk__gt=last_pk).values_list(
                    "pk", "account_id", "peer_username", "my_username"
                )[:batch_size]
            )
            if not batch:
                break
            last_pk = batch[-1][0]
            missing = {account_id for _, account_id, _, _ in batch} - accounts.keys()
            accounts.update(Account.objects.in_bulk(missing))
            peers = {}
            for _, account_id, peer, my_username in batch:
                peers.setdefault((account_id, peer), my_username)
            nicknames = lookups.run(accounts, peers)
            batch_named = _store_nicknames(
                [
                    (pk, nicknames[account_id, peer])
                    for pk, account_id, peer, _ in batch
                    if (account_id, peer) in nicknames
                ]
            )
            named += batch_named
            if on_batch:
                on_batch(len(batch), batch_named)
    return named


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def _in_processes(
    pending: QuerySet[Session],
    batch_size: int,
    threads: int,
    processes: int,
    on_batch: Callable[[int, int], None] | None,
) -> int:
    """Run _name_batches in `processes` forked processes, one share of the sessions each, and
    pass their progress on. The children inherit this process's settings (the test database
    included) and open their own connections: none may share the parent's, so it is closed
    first. A child that fails fails the whole backfill once the others have stopped."""
    context = multiprocessing.get_context("fork")
    reports = context.Queue()
    connections.close_all()
    children = [
        context.Process(
            target=_name_share,
            args=(reports, pending, share, processes, batch_size, threads),
            name=f"nicknames-{share}",
        )
        for share in range(processes)
    ]
    for child in children:
        child.start()
    named, finished, failures = 0, set(), []
    try:
        while len(finished) < processes:
            try:
                kind, share, value = reports.get(timeout=1)
            except queue.Empty:
                # A child killed outright (out of memory, a signal) reports nothing.
                for share, child in enumerate(children):
                    if share not in finished and child.exitcode not in (None, 0):
                        finished.add(share)
                        failures.append(f"share {share} exited with code {child.exitcode}")
                continue
            if kind == "batch":
                if on_batch:
                    on_batch(*value)
                continue
            finished.add(share)
            if kind == "done":
                named += value
            else:
                failures.append(f"share {share}: {value}")
    finally:
        for child in children:
            child.join()
    if failures:
        raise RuntimeError(f"nickname backfill failed: {'; '.join(failures)}")
    return named


def _name_share(reports, pending, share, shares, batch_size, threads) -> None:
    """A forked child's whole work: its share of the sessions, reported batch by batch."""
    try:
        mine = pending.annotate(nickname_share=F("pk") % shares).filter(nickname_share=share)
        named = _name_batches(
            mine,
            batch_size,
            threads,
            lambda done, named: reports.put(("batch", share, (done, named))),
        )
        reports.put(("done", share, named))
    except Exception as exc:
        log.exception("nickname backfill share %s of %s failed", share, shares)
        reports.put(("failed", share, f"{type(exc).__name__}: {exc}"))
    finally:
        connections.close_all()


class _Lookups:
    """contactList calls on a bounded thread pool; one client per thread and account."""

    def __init__(self, threads: int):
        self.pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="contacts")
        self.local = threading.local()
        self.clients: list[VideosApiClient] = []
        self.lock = threading.Lock()

    def __enter__(self) -> _Lookups:
        return self

    def __exit__(self, *exc_info) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        for client in self.clients:
            client.close()

    def run(
        self, accounts: dict[int, Account], peers: dict[tuple[int, str], str]
    ) -> dict[tuple[int, str], str]:
        """(account id, peer) → nickname, for the peers the upstream named."""
        futures = {}
        for (account_id, peer), my_username in peers.items():
            account = accounts[account_id]
            # contactList asks as a Channels identity (myRoleType 3), as replies are sent.
            me = my_identity(Session(account=account, my_username=my_username))
            if not is_channels_name(me):
                log.info("account %s: no own Channels name yet; cannot look up peers", account_id)
                continue
            futures[(account_id, peer)] = self.pool.submit(self._lookup, account, me, peer)
        found, answers = {}, {}
        for (account_id, peer), future in futures.items():
            answers[peer] = future.result()
            nickname = _nickname_of(peer, answers[peer])
            if nickname:
                found[account_id, peer] = nickname
        # The same answers name the viewers and point at their avatars.
        viewer_avatars.remember_contacts(answers)
        return found

    def _lookup(self, account: Account, me: str, peer: str) -> list[dict]:
        clients = self.local.__dict__.setdefault("clients", {})
        if account.pk not in clients:
            clients[account.pk] = account.client()
            with self.lock:
                self.clients.append(clients[account.pk])
        try:
            entries = clients[account.pk].contact_list(my_username=me, query=peer)
        except VideosApiError as exc:
            log.warning("account %s: contactList for a peer failed: %s", account.pk, exc)
            return []
        return entries


def _store_nicknames(named: list[tuple[int, str]]) -> int:
    """One UPDATE for the batch's (session pk, nickname) pairs, by primary key: a plan no
    statistics can spoil (matching on the peer's user name chose a scan of the account's
    sessions per peer while the table's statistics predated a big sync). A session named
    meanwhile keeps its name. Returns how many sessions it named."""
    if not named:
        return 0
    now = timezone.now()
    table = Session._meta.db_table
    if connection.vendor == "postgresql":
        with bound_cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS s SET peer_nickname = v.nickname, updated_at = %b "
                "FROM unnest(%b::bigint[], %b::text[]) AS v(id, nickname) "
                "WHERE s.id = v.id AND s.peer_nickname = ''",
                [now, *(list(column) for column in zip(*named, strict=True))],
            )
            return cursor.rowcount
    # SQLite runs in-process: one prepared statement run per session costs no round trips.
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET peer_nickname = %s, updated_at = %s "
            "WHERE id = %s AND peer_nickname = ''",
            [(nickname, now, pk) for pk, nickname in named],
        )
        return cursor.rowcount


def _nickname_of(peer: str, entries: list[dict]) -> str:
    for entry in entries:
        nickname = entry.get("nickname")
        if entry.get("username") == peer and isinstance(nickname, str):
            # As sync cleans every string it stores: a NUL would make PostgreSQL refuse the row.
            return clean_text(nickname).strip()[:NICKNAME_LENGTH]
    return ""
