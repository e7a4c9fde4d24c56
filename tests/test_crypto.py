"""Tokens at rest: encrypted in the database, readable as plaintext in code, rotatable, and a
missing or wrong key said clearly."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid
from io import StringIO
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.contrib.auth.models import User
from django.core.checks import run_checks
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from accounts import crypto
from accounts.crypto import TokenDecryptionError
from accounts.models import Account, AuditEvent
from inbox.models import Message, Session
from inbox.services import compose_reply, deliver_reply
from inbox.sync import SyncFailed, sync_account

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def stored_token(account: Account) -> str:
    """The token column exactly as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT token FROM accounts_account WHERE id = %s", [account.pk])
        return cursor.fetchone()[0]


def command(name: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(name, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# --- at rest -----------------------------------------------------------------------------------


def test_a_database_file_alone_never_reveals_a_token(tmp_path: Path):
    """Accounts made by the real commands in an SQLite file: the token is nowhere in its bytes
    (nor in the write-ahead log beside it), although the rest of the account is."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "inbox.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "FINDER_DATA_DIR": str(tmp_path),
    }
    env.pop("VIDEOSAPI_TOKEN", None)

    def manage(*args: str, stdin: str | None = None) -> None:
        subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=settings.BASE_DIR,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )

    manage("migrate", "-v0")
    manage("add_account", "--name", "Shop", "--app-id", "wx_dump_1", stdin="dump-token-one-7a1f")
    manage("add_account", "--name", "Shop 2", "--app-id", "wx_dump_2", stdin="dump-token-two-3b2e")
    manage("add_account", "--name", "Shop 2", "--app-id", "wx_dump_2", stdin="dump-token-new-9c4d")

    files = sorted(tmp_path.glob("db.sqlite3*"))
    data = b"".join(path.read_bytes() for path in files)
    assert b"wx_dump_1" in data and b"wx_dump_2" in data
    for token in ("dump-token-one-7a1f", "dump-token-two-3b2e", "dump-token-new-9c4d"):
        assert token.encode() not in data
        assert token.encode("utf-16-le") not in data


def test_the_token_column_holds_ciphertext_and_the_attribute_reads_plaintext(account):
    raw = stored_token(account)

    assert raw != account.token
    assert "test-token" not in raw
    key = Fernet(settings.FINDER_ENCRYPTION_KEYS[0])
    assert key.decrypt(raw.encode()) == b"test-token-5f1c2b9e7d"
    assert Account.objects.get(pk=account.pk).token == "test-token-5f1c2b9e7d"


def test_every_way_of_writing_a_token_encrypts_it(account):
    Account.objects.filter(pk=account.pk).update(token="via-update-1111")
    assert "via-update" not in stored_token(account)
    assert Account.objects.get(pk=account.pk).token == "via-update-1111"

    account = Account.objects.get(pk=account.pk)
    account.token = "via-save-2222"
    account.save()
    assert "via-save" not in stored_token(account)
    assert Account.objects.get(pk=account.pk).token == "via-save-2222"

    before = stored_token(account)
    account = Account.objects.get(pk=account.pk)
    account.name = "Renamed"
    account.save()
    assert stored_token(account) == before  # saving other fields leaves the ciphertext alone


def test_a_dump_of_the_accounts_holds_ciphertext_and_loads_back(account, tmp_path: Path):
    fixture = tmp_path / "accounts.json"
    call_command("dumpdata", "accounts.account", output=str(fixture))

    assert "test-token-5f1c2b9e7d" not in fixture.read_text()
    Account.objects.all().delete()
    call_command("loaddata", str(fixture), verbosity=0)
    assert Account.objects.get(pk=account.pk).token == "test-token-5f1c2b9e7d"


def test_the_token_cannot_be_filtered_on(db):
    with pytest.raises(FieldError, match="encrypted"):
        list(Account.objects.filter(token="anything"))


# --- wrong key -----------------------------------------------------------------------------------


def test_a_token_under_an_unknown_key_says_which_account_and_never_the_token(account, settings):
    settings.FINDER_ENCRYPTION_KEYS = [NEW_KEY]
    reloaded = Account.objects.get(pk=account.pk)

    with pytest.raises(TokenDecryptionError) as error:
        reloaded.client()

    message = str(error.value)
    assert "Cannot decrypt the token of account Test shop (wx_test_app)" in message
    assert "FINDER_ENCRYPTION_KEY" in message
    assert "test-token-5f1c2b9e7d" not in message
    assert stored_token(account) not in message


def test_a_sync_under_a_wrong_key_pauses_the_account_with_the_reason(account, settings):
    settings.FINDER_ENCRYPTION_KEYS = [NEW_KEY]

    with pytest.raises(SyncFailed):
        sync_account(Account.objects.get(pk=account.pk))

    state = Account.objects.values("paused_reason", "last_error", "sync_lease_until").get()
    assert "Cannot decrypt the token of account Test shop" in state["paused_reason"]
    assert "test-token-5f1c2b9e7d" not in state["paused_reason"] + state["last_error"]
    assert state["sync_lease_until"] is None, "the lease is released"
    assert not Message.objects.filter(account=account).exists()


def test_a_reply_under_a_wrong_key_fails_as_not_sent(account, sandbox, settings):
    sync_account(account)
    session = Session.objects.filter(account=account).first()
    author = User.objects.create_user("agent")
    reply = compose_reply(session, author, "您好", uuid.uuid4())  # its send is not run yet
    settings.FINDER_ENCRYPTION_KEYS = [NEW_KEY]

    outcome = deliver_reply(reply.pk)

    reply.refresh_from_db()
    assert outcome.delivery == reply.delivery == Message.Delivery.FAILED
    assert not reply.maybe_delivered
    assert "Cannot decrypt the token" in reply.delivery_error
    assert not [call for call in sandbox.calls if "postPrivateLetter" in call["path"]]


def test_admin_still_lists_and_renames_accounts_under_a_wrong_key(admin_client, account, settings):
    right_keys = settings.FINDER_ENCRYPTION_KEYS
    settings.FINDER_ENCRYPTION_KEYS = [NEW_KEY]

    listing = admin_client.get(reverse("admin:accounts_account_changelist"))
    assert listing.status_code == 200
    form = {
        "name": "Renamed shop",
        "app_id": account.app_id,
        "token": "",
        "base_url": account.base_url,
        "poll_interval": 5,
        "enabled": "on",
    }
    changed = admin_client.post(reverse("admin:accounts_account_change", args=[account.pk]), form)

    assert changed.status_code == 302
    settings.FINDER_ENCRYPTION_KEYS = right_keys
    renamed = Account.objects.get(pk=account.pk)
    assert (renamed.name, renamed.token) == ("Renamed shop", "test-token-5f1c2b9e7d")


# --- rotation ----------------------------------------------------------------------------------


def test_rotate_encryption_key_reencrypts_under_the_newest_and_is_idempotent(db, settings):
    settings.FINDER_ENCRYPTION_KEYS = [OLD_KEY]
    first = Account.objects.create(name="One", app_id="wx_1", token="rotate-token-1")
    second = Account.objects.create(name="Two", app_id="wx_2", token="rotate-token-2")

    settings.FINDER_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    out, err = command("rotate_encryption_key")
    again, _ = command("rotate_encryption_key")

    assert out == "Re-encrypted 2 token(s) under the newest key; 0 already were.\n"
    assert again == "Re-encrypted 0 token(s) under the newest key; 2 already were.\n"
    assert "rotate-token" not in out + err + again
    settings.FINDER_ENCRYPTION_KEYS = [NEW_KEY]  # the old key can go now
    assert [Account.objects.get(pk=a.pk).token for a in (first, second)] == [
        "rotate-token-1",
        "rotate-token-2",
    ]
    [event] = AuditEvent.objects.filter(action=AuditEvent.Action.KEY_ROTATED)
    assert event.details == {"via": "manage.py rotate_encryption_key", "reencrypted": 2}


def test_rotate_encryption_key_names_an_account_it_cannot_decrypt(db, settings):
    settings.FINDER_ENCRYPTION_KEYS = [OLD_KEY]
    Account.objects.create(name="Lost", app_id="wx_lost", token="lost-token-5")
    settings.FINDER_ENCRYPTION_KEYS = [NEW_KEY]
    Account.objects.create(name="Fine", app_id="wx_fine", token="fine-token-6")

    err = StringIO()
    with pytest.raises(CommandError, match="1 token.s. could not be decrypted"):
        call_command("rotate_encryption_key", stdout=StringIO(), stderr=err)

    assert "Cannot decrypt the token of account Lost (wx_lost)" in err.getvalue()
    assert "token-5" not in err.getvalue()


# --- the migration ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_existing_tokens_and_reverses():
    executor = MigrationExecutor(connection)
    before = [("accounts", "0002_account_outage")]
    latest = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate(before)
        old_apps = executor.loader.project_state(before).apps
        OldAccount = old_apps.get_model("accounts", "Account")
        OldAccount.objects.create(name="Legacy", app_id="wx_legacy", token="legacy-plain-8d2c")

        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(latest)

        legacy = Account.objects.get(app_id="wx_legacy")
        assert "legacy-plain" not in stored_token(legacy)
        assert legacy.token == "legacy-plain-8d2c"

        executor = MigrationExecutor(connection)
        executor.migrate(before)
        with connection.cursor() as cursor:
            cursor.execute("SELECT token FROM accounts_account WHERE app_id = 'wx_legacy'")
            assert cursor.fetchone()[0] == "legacy-plain-8d2c"
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())


# --- keys and checks ---------------------------------------------------------------------------


def check_ids(**kwargs) -> set[str]:
    return {message.id for message in run_checks(**kwargs)}


def test_check_deploy_is_an_error_without_a_key(settings):
    settings.FINDER_ENCRYPTION_KEYS = []
    errors = [m for m in run_checks(include_deployment_checks=True) if m.id == "accounts.E001"]

    assert len(errors) == 1
    assert errors[0].is_serious()
    assert "FINDER_ENCRYPTION_KEY is not set" in errors[0].msg
    assert "accounts.E001" not in check_ids()  # only --deploy asks


def test_check_deploy_is_quiet_with_a_key_and_flags_a_malformed_one(settings):
    settings.FINDER_ENCRYPTION_KEYS = [NEW_KEY]
    assert not {"accounts.E001", "accounts.E002"} & check_ids(include_deployment_checks=True)

    settings.FINDER_ENCRYPTION_KEYS = [NEW_KEY, "not-a-key"]
    [error] = [m for m in run_checks() if m.id == "accounts.E002"]
    assert "key number 2 is not a Fernet key" in error.msg


def test_without_a_key_development_uses_one_generated_into_the_data_folder(settings, tmp_path):
    settings.FINDER_ENCRYPTION_KEYS = []
    settings.DATA_DIR = tmp_path

    keys = crypto.configured_keys()

    key_file = tmp_path / crypto.DEV_KEY_FILENAME
    assert keys == [key_file.read_text()] == crypto.configured_keys()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    Fernet(keys[0])  # a real key
    assert crypto.decrypt(crypto.encrypt("dev-token")) == "dev-token"
    assert [path.name for path in tmp_path.iterdir()] == [crypto.DEV_KEY_FILENAME]


def test_the_demo_gives_its_processes_the_key_it_encrypted_with(settings, tmp_path, monkeypatch):
    from inbox.management.commands import demo

    settings.FINDER_ENCRYPTION_KEYS = []
    settings.DATA_DIR = tmp_path
    started = []

    class FakePopen:
        def __init__(self, command, env, **kwargs):
            started.append(env)

    monkeypatch.setattr(demo.subprocess, "Popen", FakePopen)
    demo.Command()._start_children(
        {"no_web": True, "no_worker": True, "no_beat": False, "loglevel": "warning"}
    )

    [env] = started
    assert env["FINDER_ENCRYPTION_KEY"] == (tmp_path / crypto.DEV_KEY_FILENAME).read_text()
    assert env["FINDER_DATA_DIR"] == str(tmp_path)
