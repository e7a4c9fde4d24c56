"""History backfills at scale: peer nicknames in batches (`backfill_nicknames`), the sandbox's
made-on-demand history, and the progress bars of long commands (on a terminal only)."""

from __future__ import annotations

import io
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Account
from accounts.sandbox import history_nickname, history_peer
from inbox import contacts
from inbox.models import Message, Session
from inbox.sync import sync_account

CONTACTS = "/finder/contactList"
HISTORY_APP_ID = "wx_history_shop"
HISTORY_TOKEN = "history-token-41d7"


class Terminal(io.StringIO):
    """An output stream that says it is a terminal, as a shell's stdout does."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def history(db, sandbox_server, sandbox):
    """A shop whose upstream holds a 36-letter history over 12 peers, nothing synced yet."""

    def make(letters: int = 36, sessions: int = 12) -> Account:
        upstream = sandbox.add_account(HISTORY_APP_ID, HISTORY_TOKEN, example=False, script=False)
        sandbox.add_history(HISTORY_APP_ID, letters=letters, sessions=sessions)
        account = Account.objects.create(
            name="History shop",
            app_id=HISTORY_APP_ID,
            token=HISTORY_TOKEN,
            base_url=sandbox_server.base_url,
            own_username=upstream.finder_username,
        )
        account.upstream = upstream
        return account

    return make


def synced_history(history, **sizes) -> Account:
    account = history(**sizes)
    while not sync_account(account).caught_up:
        pass
    return account


# --- the sandbox's history ---------------------------------------------------------------------


def test_a_made_on_demand_history_syncs_whole_and_in_order(history, sandbox):
    account = synced_history(history, letters=36, sessions=12)

    assert Message.objects.filter(account=account).count() == 36
    assert Session.objects.filter(account=account).count() == 12
    seqs = list(
        Message.objects.filter(account=account).order_by("pk").values_list("seq", flat=True)
    )
    assert seqs == list(range(1, 37))
    # Made the same on every call: a second read from the start stores nothing new.
    Account.objects.filter(pk=account.pk).update(key_buff="")
    assert sync_account(account).new_messages == 0


# --- backfill_nicknames ------------------------------------------------------------------------


def test_backfill_asks_contact_list_once_per_peer_and_writes_one_update_per_batch(history, sandbox):
    account = synced_history(history, letters=36, sessions=12)
    sandbox.calls.clear()

    with CaptureQueriesContext(connection) as queries:
        named = contacts.backfill_nicknames(Session.objects.all(), batch_size=5, threads=3)

    assert named == 12
    statements = [query["sql"] for query in queries.captured_queries]
    # The same answers fill the viewers' profiles (inbox.viewers.avatars.remember_contacts):
    # make the viewers, read them, update their names and picture URLs; three per batch.
    profiles = [sql for sql in statements if "viewers_viewer" in sql]
    assert len(profiles) == 3 * 3
    statements = [sql for sql in statements if sql not in profiles]
    # SQLite's is one prepared UPDATE run per peer (executemany, logged as "N times: UPDATE").
    updates = [sql for sql in statements if "UPDATE" in sql]
    session_reads = [sql for sql in statements if 'FROM "inbox_session"' in sql]
    assert len(updates) == 3  # batches of 5, 5 and 2 sessions
    assert len(session_reads) == 4  # the three batches, and the empty read that ends the walk
    assert len(statements) == len(updates) + len(session_reads) + 1  # + the account, once
    calls = sandbox.calls_to(CONTACTS)
    assert sorted(call["body"]["queryInfo"] for call in calls) == sorted(
        history_peer(account.upstream, number) for number in range(12)
    )
    assert {call["body"]["myUserName"] for call in calls} == {account.own_username}
    assert {call["body"]["myRoleType"] for call in calls} == {3}
    for session in Session.objects.all():
        number = int(session.peer_username.removesuffix("@finder")[-16:])
        assert session.peer_nickname == history_nickname(number)


def test_backfill_bumps_updated_at_so_open_session_lists_pick_the_names_up(history):
    account = synced_history(history, letters=6, sessions=3)
    before = dict(Session.objects.values_list("pk", "updated_at"))

    contacts.backfill_nicknames(Session.objects.filter(account=account))

    for pk, updated_at in Session.objects.values_list("pk", "updated_at"):
        assert updated_at > before[pk]


def test_backfill_leaves_named_sessions_and_unknown_peers_as_they_are(history, sandbox):
    account = synced_history(history, letters=6, sessions=3)
    named_by_staff = Session.objects.filter(account=account).order_by("pk").first()
    Session.objects.filter(pk=named_by_staff.pk).update(peer_nickname="老客户")
    stranger = Session.objects.create(
        account=account,
        msg_session_id="stranger@findermsg",
        peer_username="v2_stranger@finder",
        my_username=account.own_username,
        last_message_at=named_by_staff.last_message_at,
    )
    sandbox.calls.clear()

    named = contacts.backfill_nicknames(Session.objects.all())

    assert named == 2
    asked = {call["body"]["queryInfo"] for call in sandbox.calls_to(CONTACTS)}
    assert named_by_staff.peer_username not in asked
    assert stranger.peer_username in asked
    assert Session.objects.get(pk=named_by_staff.pk).peer_nickname == "老客户"
    assert Session.objects.get(pk=stranger.pk).peer_nickname == ""


def test_backfill_nicknames_command_names_one_account_and_prints_no_bar_off_a_terminal(
    history, sandbox, account
):
    shop = synced_history(history, letters=8, sessions=4)
    sync_account(account)  # the default sandbox shop: its sessions must stay untouched
    out = StringIO()

    call_command("backfill_nicknames", "--account", shop.app_id, stdout=out)

    assert out.getvalue().startswith("4 of 4 unnamed session(s) named in ")
    assert "\r" not in out.getvalue() and "%|" not in out.getvalue()
    assert Session.objects.filter(account=shop, peer_nickname="").count() == 0
    assert Session.objects.filter(account=account).exclude(peer_nickname="").count() == 0


def test_backfill_nicknames_command_shows_a_progress_bar_on_a_terminal(history):
    shop = synced_history(history, letters=8, sessions=4)
    out = Terminal()

    call_command("backfill_nicknames", "--account", shop.app_id, stdout=out)

    assert "4/4 [" in out.getvalue() and " sessions/s]" in out.getvalue()


def test_backfill_nicknames_refuses_an_unknown_account(db):
    with pytest.raises(Exception, match="no account with app id 'wx_nobody'"):
        call_command("backfill_nicknames", "--account", "wx_nobody", stdout=StringIO())


# --- sync's progress bar -------------------------------------------------------------------------


def test_sync_shows_pages_letters_and_rate_on_a_terminal(history, settings):
    settings.SYNC_MAX_PAGES_PER_PASS = 2
    shop = history(letters=36, sessions=12)
    out = Terminal()

    call_command("sync", "--account", shop.app_id, stdout=out)

    # The sandbox serves 10 letters a page: 4 pages over two passes, one bar for them all.
    assert "36 letters [" in out.getvalue()
    assert " letters/s," in out.getvalue()
    assert f"{shop.app_id}: 4 page(s)" in out.getvalue()


def test_sync_prints_only_its_summary_when_not_on_a_terminal(history):
    shop = history(letters=36, sessions=12)
    out = StringIO()

    call_command("sync", "--account", shop.app_id, stdout=out)

    assert out.getvalue() == (
        f"{shop.app_id}: 4 page(s), 36 new message(s), 12 new session(s), 0 quarantined item(s)\n"
    )


@pytest.mark.postgres
def test_backfill_in_two_processes_names_every_session_once_and_reports_each_batch(
    transactional_db, history, sandbox
):
    account = synced_history(history, letters=40, sessions=20)
    sandbox.calls.clear()
    batches = []

    named = contacts.backfill_nicknames(
        Session.objects.filter(account=account),
        batch_size=4,
        threads=2,
        processes=2,
        on_batch=lambda done, named: batches.append((done, named)),
    )

    assert named == 20
    assert sum(done for done, _ in batches) == 20 and len(batches) >= 5
    asked = [call["body"]["queryInfo"] for call in sandbox.calls_to(CONTACTS)]
    assert sorted(asked) == sorted(history_peer(account.upstream, number) for number in range(20))
    assert not Session.objects.filter(account=account, peer_nickname="").exists()


@pytest.mark.postgres
def test_a_failing_share_fails_the_backfill_after_the_others_stop(
    transactional_db, history, monkeypatch
):
    account = synced_history(history, letters=8, sessions=8)

    def fail_on_share_one(pending, batch_size, threads, on_batch):
        if "% 2) = 1" in str(pending.query).replace('"', ""):
            raise ValueError("upstream exploded")
        return real(pending, batch_size, threads, on_batch)

    real = contacts._name_batches
    monkeypatch.setattr(contacts, "_name_batches", fail_on_share_one)

    with pytest.raises(RuntimeError, match="share 1: ValueError: upstream exploded"):
        contacts.backfill_nicknames(Session.objects.filter(account=account), processes=2)
    # Share 0 finished its half.
    assert Session.objects.filter(account=account).exclude(peer_nickname="").count() == 4


def test_inside_a_transaction_the_backfill_stays_in_this_process(history, sandbox):
    account = synced_history(history, letters=6, sessions=3)

    # The test's own transaction is open: children could not see its rows.
    named = contacts.backfill_nicknames(Session.objects.filter(account=account), processes=4)

    assert named == 3
