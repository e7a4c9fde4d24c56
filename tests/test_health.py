"""/healthz: database and broker reachability and the age of the newest successful sync."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from accounts.models import Account
from inbox import health, sync
from inbox.celery import app

URL = "/healthz"


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_is_ok_when_database_and_broker_answer(client, db):
    response = client.get(URL)

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": True,
        "broker": True,
        "last_sync_age_seconds": None,
        "accounts_down": [],
    }


def test_healthz_reports_the_age_of_the_newest_successful_sync(client, account, sandbox):
    sync.sync_account(account)
    Account.objects.create(
        name="Old", app_id="wx_old", token="t", last_success_at=timezone.now() - timedelta(hours=1)
    )

    assert client.get(URL).json()["last_sync_age_seconds"] <= 2

    Account.objects.filter(pk=account.pk).update(
        last_success_at=timezone.now() - timedelta(seconds=90)
    )
    assert 90 <= client.get(URL).json()["last_sync_age_seconds"] <= 92


def test_healthz_is_503_when_the_broker_is_down_and_names_no_secret(
    client, db, closed_port, monkeypatch
):
    down = f"redis://:hunter2@127.0.0.1:{closed_port}/0"
    monkeypatch.setattr(app.conf, "broker_url", down)
    # Celery prefers the variable to its setting (set after, so that undoing restores the setting)
    monkeypatch.setenv("CELERY_BROKER_URL", down)

    response = client.get(URL)

    assert response.status_code == 503
    assert response.json()["broker"] is False
    assert response.json()["database"] is True
    assert response.json()["status"] == "unavailable"
    assert b"hunter2" not in response.content
    assert str(closed_port).encode() not in response.content


def test_healthz_is_503_when_the_database_is_down(client, db, monkeypatch):
    class Unreachable:
        def cursor(self):
            raise OperationalError("could not connect to server: password=hunter2")

    monkeypatch.setattr(health, "connection", Unreachable())

    response = client.get(URL)

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": False,
        "broker": True,
        "last_sync_age_seconds": None,
        "accounts_down": None,
    }
    assert b"hunter2" not in response.content


def test_healthz_needs_no_login_and_is_never_cached(client, db):
    response = client.get(URL)

    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]


def test_healthz_answers_get_only(client, db):
    assert client.post(URL).status_code == 405


def test_healthz_lists_the_accounts_whose_device_is_offline_by_id_and_name_only(
    client, account, sandbox
):
    healthy = Account.objects.create(name="Healthy", app_id="wx_fine", token="fine-token")
    sandbox.set_device(account.app_id, "offline")
    with pytest.raises(sync.SyncFailed):
        sync.sync_account(account)

    response = client.get(URL)

    assert response.status_code == 200  # a phone offline is no reason to take web out
    assert response.json()["accounts_down"] == [{"id": account.pk, "name": "Test shop"}]
    assert str(healthy.pk) not in str(response.json()["accounts_down"])
    for secret in (account.token, account.app_id, "微信已离线", sandbox.base_url):
        assert secret.encode() not in response.content

    sandbox.set_device(account.app_id, "online")
    sync.sync_account(account)
    assert client.get(URL).json()["accounts_down"] == []
