"""The operator's commands: `add_account` and `sync`, in-process through call_command and once
as real `manage.py` processes for their exit status."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from accounts.models import Account
from inbox.models import Message, QuarantinedItem, Session
from inbox.sync import account_lease
from tests.conftest import SANDBOX_APP_ID, SANDBOX_TOKEN

SECOND_APP_ID = "wx_second_shop"
SECOND_TOKEN = "second-token-77a1c0"
# The default sandbox account: the example's 5 letters and the scripted 18, over 6 sessions in
# 3 pages; an account without the example: the scripted 18 over 5 sessions in 2 pages.
FIRST_SUMMARY = "3 page(s), 23 new message(s), 6 new session(s), 0 quarantined item(s)"
SECOND_SUMMARY = "2 page(s), 18 new message(s), 5 new session(s), 0 quarantined item(s)"
NOTHING_NEW = "0 page(s), 0 new message(s), 0 new session(s), 0 quarantined item(s)"


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def second_account(db, sandbox_server, sandbox) -> Account:
    """A second shop, named to sort after the first, made the way an operator makes one."""
    sandbox.add_account(SECOND_APP_ID, SECOND_TOKEN, example=False)
    add_account(
        "--name",
        "Zhang's second shop",
        "--app-id",
        SECOND_APP_ID,
        "--base-url",
        sandbox_server.base_url,
        stdin=StringIO(SECOND_TOKEN),
    )
    return Account.objects.get(app_id=SECOND_APP_ID)


def upstream_total(sandbox) -> int:
    return sum(len(account.letters) for account in sandbox.accounts.values())


# --- add_account -----------------------------------------------------------------------------


class TerminalStdin(StringIO):
    """stdin as an interactive shell has it: a terminal, with nothing piped in."""

    def isatty(self) -> bool:
        return True


def add_account(*args: str, stdin: StringIO | None = None) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("add_account", *args, stdin=stdin or TerminalStdin(), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_add_account_creates_then_updates_and_never_prints_the_token(
    db, django_user_model, monkeypatch
):
    django_user_model.objects.create_user("agent")

    created, created_errors = add_account(
        "--name",
        "Shop",
        "--app-id",
        " wx_new ",
        "--token-stdin",
        stdin=StringIO("first-token-1234\n"),
    )
    monkeypatch.setenv("VIDEOSAPI_TOKEN", "second-token-5678")
    updated, updated_errors = add_account(
        "--name",
        "Shop renamed",
        "--app-id",
        "wx_new",
        "--base-url",
        "http://videosapi.example/finder/v2/api",
        "--member",
        "agent",
    )

    account = Account.objects.get()
    assert created == "Created account Shop (wx_new)\n"
    assert updated == "Updated account Shop renamed (wx_new)\n"
    assert (account.app_id, account.name, account.token) == (
        "wx_new",
        "Shop renamed",
        "second-token-5678",
    )
    assert account.base_url == "http://videosapi.example/finder/v2/api"
    assert list(account.members.values_list("username", flat=True)) == ["agent"]
    for output in (created, created_errors, updated, updated_errors):
        assert "first-token-1234" not in output
        assert "second-token-5678" not in output


def test_add_account_reads_a_piped_token_without_a_flag(db):
    out, err = add_account("--name", "Shop", "--app-id", "wx_new", stdin=StringIO("piped-9f8e\n"))

    assert Account.objects.get().token == "piped-9f8e"
    assert (out, err) == ("Created account Shop (wx_new)\n", "")


def test_add_account_with_token_on_the_command_line_works_but_warns(db):
    out, err = add_account("--name", "Shop", "--app-id", "wx_new", "--token", "argv-token-5e1d")

    assert Account.objects.get().token == "argv-token-5e1d"
    assert "--token is visible to other users in `ps`" in err
    assert "--token-stdin" in err and "VIDEOSAPI_TOKEN" in err
    assert "argv-token-5e1d" not in out + err


def test_add_account_at_a_terminal_without_a_token_says_where_to_give_it(db, monkeypatch):
    monkeypatch.delenv("VIDEOSAPI_TOKEN", raising=False)
    with pytest.raises(CommandError, match="give the token on stdin .--token-stdin. or in"):
        add_account("--name", "Shop", "--app-id", "wx_new")

    assert not Account.objects.exists()


@pytest.mark.parametrize(
    "args, stdin",
    [(["--token", "  "], None), (["--token-stdin"], StringIO("\n")), ([], StringIO(""))],
    ids=["flag", "token-stdin", "piped"],
)
def test_add_account_refuses_an_empty_token(db, args, stdin):
    with pytest.raises(CommandError, match="the token from .* is empty"):
        add_account("--name", "Shop", "--app-id", "wx_new", *args, stdin=stdin)

    assert not Account.objects.exists()


def test_add_account_refuses_a_token_of_several_lines(db):
    with pytest.raises(CommandError, match="must be one line"):
        add_account("--name", "S", "--app-id", "wx", stdin=StringIO("one\ntwo\n"))

    assert not Account.objects.exists()


def test_add_account_refuses_an_unknown_member(db):
    with pytest.raises(CommandError, match="no such user: ghost"):
        add_account("--name", "S", "--app-id", "wx", "--member", "ghost", stdin=StringIO("t"))

    assert not Account.objects.exists()


def test_manage_py_add_account_takes_the_token_from_a_pipe_and_keeps_it_out_of_argv(
    tmp_path: Path,
):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "inbox.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "FINDER_DATA_DIR": str(tmp_path),
    }
    env.pop("VIDEOSAPI_TOKEN", None)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=settings.BASE_DIR, env=env, check=True)
    command = [*manage, "add_account", "--name", "Shop", "--app-id", "wx_piped"]

    added = subprocess.run(
        command,
        cwd=settings.BASE_DIR,
        env=env,
        input="piped-token-0c4f\n",
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert (added.returncode, added.stdout) == (0, "Created account Shop (wx_piped)\n")
    assert "Warning" not in added.stderr
    assert "piped-token-0c4f" not in " ".join(command) + added.stderr
    shown = subprocess.run(
        [
            *manage,
            "shell",
            "-c",
            "from accounts.models import Account; "
            "print(Account.objects.get(app_id='wx_piped').token == 'piped-token-0c4f')",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.stdout.splitlines()[-1] == "True"


# --- sync ------------------------------------------------------------------------------------


def test_sync_prints_one_summary_line_per_account(account, second_account, sandbox):
    out, err = run("sync")

    assert out.splitlines() == [
        f"{SANDBOX_APP_ID}: {FIRST_SUMMARY}",
        f"{SECOND_APP_ID}: {SECOND_SUMMARY}",
    ]
    assert err == ""


def test_sync_twice_stores_every_message_once(account, second_account, sandbox):
    run("sync")

    out, _ = run("sync")

    assert out.splitlines() == [
        f"{SANDBOX_APP_ID}: {NOTHING_NEW}",
        f"{SECOND_APP_ID}: {NOTHING_NEW}",
    ]
    upstream = sorted(
        item["content"]["msg"]["NewMsgId"]
        for state in sandbox.accounts.values()
        for item in state.letters
    )
    assert sorted(Message.objects.values_list("new_msg_id", flat=True)) == upstream
    assert Message.objects.count() == upstream_total(sandbox) == 41
    assert Session.objects.count() == 11


def test_sync_reports_quarantined_items(account, sandbox, make_item):
    with sandbox.lock:
        sandbox.accounts[SANDBOX_APP_ID].letters.append(make_item(content__msg__NewMsgId=-7))

    out, _ = run("sync")

    assert out == (
        f"{SANDBOX_APP_ID}: 3 page(s), 23 new message(s), 6 new session(s), 1 quarantined item(s)\n"
    )
    assert QuarantinedItem.objects.count() == 1


def test_sync_of_one_account_leaves_the_others(account, second_account, sandbox):
    out, _ = run("sync", "--account", SECOND_APP_ID)

    assert out == f"{SECOND_APP_ID}: {SECOND_SUMMARY}\n"
    assert not Message.objects.filter(account=account).exists()


def test_sync_skips_disabled_and_paused_accounts_unless_named(account, second_account, sandbox):
    Account.objects.filter(pk=account.pk).update(paused_reason="token expired")
    Account.objects.filter(pk=second_account.pk).update(enabled=False)

    everyone, _ = run("sync")
    named, _ = run("sync", "--account", SANDBOX_APP_ID)

    assert everyone == ""
    assert named == f"{SANDBOX_APP_ID}: {FIRST_SUMMARY}\n"


def test_sync_of_an_unknown_account_fails(db):
    with pytest.raises(CommandError, match="no account with app id 'wx_nobody'"):
        run("sync", "--account", "wx_nobody")


def test_a_failing_sync_raises_one_line_without_the_token_and_still_syncs_the_rest(
    account, second_account, sandbox
):
    # token_expired makes the upstream echo the token it was sent.
    sandbox.inject("token_expired")
    out = StringIO()

    with pytest.raises(CommandError) as failed:
        call_command("sync", stdout=out, stderr=out)

    reason = str(failed.value)
    assert reason.startswith(f"sync failed: {SANDBOX_APP_ID}: UpstreamRejected: ret=500: ")
    assert "不可用或已过期" in reason
    assert "\n" not in reason
    assert failed.value.returncode == 1
    assert out.getvalue() == f"{SECOND_APP_ID}: {SECOND_SUMMARY}\n"
    assert SANDBOX_TOKEN not in reason + out.getvalue()
    assert Account.objects.get(pk=account.pk).paused_reason


def test_a_sync_that_another_pass_holds_fails_with_the_reason(account, sandbox):
    with account_lease(account), pytest.raises(CommandError, match="being synced by another"):
        run("sync")

    assert sandbox.calls == []


def test_a_database_error_is_reported_on_one_line(account, sandbox):
    # PostgreSQL's errors carry DETAIL and CONTEXT lines; the reason must still be one line.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION refuse_all() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'refused' USING DETAIL = 'a second line'; END $$ "
                "LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER refuse_all BEFORE INSERT ON inbox_message "
                "FOR EACH ROW EXECUTE FUNCTION refuse_all()"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER refuse_all BEFORE INSERT ON inbox_message "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )

    with pytest.raises(CommandError) as failed:
        run("sync")

    assert "refused" in str(failed.value)
    assert "\n" not in str(failed.value)
    assert "\n" not in Account.objects.get(pk=account.pk).last_error


# --- the real processes ----------------------------------------------------------------------


def test_manage_py_sync_exits_0_then_1_with_a_one_line_reason(
    tmp_path: Path, sandbox_server, sandbox
):
    # A subprocess cannot see the test database: it gets an SQLite file of its own.
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "inbox.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "FINDER_DATA_DIR": str(tmp_path),
        "VIDEOSAPI_RETRIES": "0",
        "PYTHONIOENCODING": "utf-8",
    }

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=settings.BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=60,
        )

    assert manage("migrate", "--verbosity", "0").returncode == 0
    added = manage(
        "add_account",
        "--name",
        "Shop",
        "--app-id",
        SANDBOX_APP_ID,
        "--token",
        SANDBOX_TOKEN,
        "--base-url",
        sandbox_server.base_url,
    )
    synced = manage("sync")
    sandbox.inject("token_expired")
    failed = manage("sync")

    assert (added.returncode, added.stdout) == (0, f"Created account Shop ({SANDBOX_APP_ID})\n")
    assert (synced.returncode, synced.stdout) == (0, f"{SANDBOX_APP_ID}: {FIRST_SUMMARY}\n")
    assert failed.returncode == 1
    assert failed.stdout == ""
    assert failed.stderr.splitlines()[-1].startswith(
        f"CommandError: sync failed: {SANDBOX_APP_ID}: UpstreamRejected: ret=500: HTTP HEADER"
    )
    for process in (added, synced, failed):
        assert SANDBOX_TOKEN not in process.stdout + process.stderr


# --- benchmark_sync --------------------------------------------------------------------------


def test_benchmark_prints_a_row_per_page_size_and_leaves_nothing_behind(db):
    out, _ = run("benchmark_sync", "--pages", "2", "--sizes", "10,30")

    rows = [line.split("|") for line in out.splitlines() if line.count("|") == 4]
    rows = [row for row in rows if row[0].strip().isdigit()]
    assert [row[0].strip() for row in rows] == ["10", "30"]
    for row in rows:
        redelivery_queries_and_new_rows = row[2].split()
        assert redelivery_queries_and_new_rows[-1] == "0", "re-delivery stored nothing"
        assert row[3].split()[-1] != row[1].split()[-1], "naive takes more queries"
    assert not Account.objects.exists()
    assert not Message.objects.exists()
    assert not Session.objects.exists()


def test_benchmark_refuses_nonsense_sizes(db):
    with pytest.raises(CommandError, match="--sizes"):
        run("benchmark_sync", "--sizes", "ten")
