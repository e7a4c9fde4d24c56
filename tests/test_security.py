"""Web-facing hardening: sign-in lockouts, HTTPS settings, idle sessions, the
Content-Security-Policy, and request bodies refused by their size before they are read."""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
from axes.models import AccessAttempt
from cryptography.fernet import Fernet
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session as StoredSession
from django.core.files.uploadhandler import FileUploadHandler
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.client import encode_multipart
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from inbox.middleware import IdleSessionMiddleware
from inbox.models import Message, Session
from inbox.services import MAX_IMAGE_BYTES

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "the-right-password-42"
LOGIN_PAGES = ["/login/", "/admin/login/"]


@pytest.fixture
def alice(db) -> User:
    # Staff and superuser, so that the right password signs in on admin's page too.
    return User.objects.create_superuser("alice", password=PASSWORD)


@pytest.fixture
def bob(db) -> User:
    return User.objects.create_superuser("bob", password=PASSWORD)


def sign_in(path: str, username: str, password: str, address: str):
    """One sign-in attempt from a fresh browser at `address`."""
    client = Client(REMOTE_ADDR=address)
    response = client.post(path, {"username": username, "password": password})
    return response, client


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def fail(path: str, username: str, address: str, times: int) -> None:
    for n in range(times):
        response, _ = sign_in(path, username, f"wrong-{n}", address)
        assert response.status_code in (200, 429)


# --- sign-in lockouts ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", LOGIN_PAGES)
def test_fifty_wrong_passwords_then_the_right_one_is_refused(path, alice):
    fail(path, "alice", "203.0.113.5", 50)

    response, client = sign_in(path, "alice", PASSWORD, "203.0.113.5")

    assert response.status_code == 429
    assert not signed_in(client)
    html = response.content.decode()
    assert "Too many failed sign-ins for this user name or from this address" in html
    assert "blocked for 15 minutes" in html
    assert 'href="/login/"' in html  # the way back, on a page styled like the sign-in
    # What admin lists for each attempt never holds a password that was tried.
    assert AccessAttempt.objects.exists()
    assert not AccessAttempt.objects.filter(post_data__contains="wrong-").exists()


@pytest.mark.parametrize("path", LOGIN_PAGES)
def test_four_failures_do_not_lock_and_the_fifth_does(path, alice):
    fail(path, "alice", "203.0.113.5", 4)
    response, client = sign_in(path, "alice", PASSWORD, "203.0.113.5")
    assert response.status_code == 302
    assert signed_in(client)

    fail(path, "alice", "203.0.113.5", 1)
    response, client = sign_in(path, "alice", PASSWORD, "203.0.113.5")
    assert response.status_code == 429
    assert not signed_in(client)


def test_a_lockout_holds_the_user_name_everywhere_and_the_address_for_everyone(alice, bob):
    """The policy: the user name OR the address. A guesser who moves to fresh addresses is
    stopped by the user name; one who tries many user names, by the address."""
    fail("/login/", "alice", "203.0.113.5", 5)

    # Someone else, somewhere else: unaffected, on both sign-in pages.
    for path in LOGIN_PAGES:
        response, client = sign_in(path, "bob", PASSWORD, "198.51.100.7")
        assert response.status_code == 302, path
        assert signed_in(client)
    # The locked user name, from a fresh address; and the locked address, for another user.
    for username, address in [("alice", "198.51.100.8"), ("bob", "203.0.113.5")]:
        for path in LOGIN_PAGES:
            response, client = sign_in(path, username, PASSWORD, address)
            assert response.status_code == 429, (username, address, path)
            assert not signed_in(client)


def test_failures_on_both_pages_count_together(alice):
    fail("/login/", "alice", "203.0.113.5", 3)
    fail("/admin/login/", "alice", "203.0.113.5", 2)
    response, _ = sign_in("/login/", "alice", PASSWORD, "203.0.113.5")
    assert response.status_code == 429


def test_the_lockout_ends_after_the_cool_off(alice):
    fail("/login/", "alice", "203.0.113.5", 5)
    assert sign_in("/login/", "alice", PASSWORD, "203.0.113.5")[0].status_code == 429

    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))

    response, client = sign_in("/login/", "alice", PASSWORD, "203.0.113.5")
    assert response.status_code == 302
    assert signed_in(client)


def test_reset_lockouts_lifts_the_user_names_then_the_addresss_lockout_and_is_audited(alice):
    fail("/login/", "alice", "203.0.113.5", 5)

    call_command("reset_lockouts", "--username", "alice", stdout=io.StringIO())
    # The user name is free again from anywhere...
    assert sign_in("/login/", "alice", PASSWORD, "198.51.100.8")[0].status_code == 302
    # ...and the address's own failures were alice's, so it is free too.
    assert sign_in("/login/", "alice", PASSWORD, "203.0.113.5")[0].status_code == 302

    fail("/login/", "mallory", "203.0.113.9", 5)
    assert sign_in("/login/", "alice", PASSWORD, "203.0.113.9")[0].status_code == 429
    records = AccessAttempt.objects.filter(ip_address="203.0.113.9").count()
    out = io.StringIO()
    call_command("reset_lockouts", "--ip", "203.0.113.9", stdout=out)
    assert f"{records} failed sign-in record(s) removed" in out.getvalue()
    assert sign_in("/login/", "alice", PASSWORD, "203.0.113.9")[0].status_code == 302

    events = AuditEvent.objects.filter(action=AuditEvent.Action.LOCKOUT_RESET).order_by("pk")
    assert [(e.actor, e.details["username"], e.details["ip_address"]) for e in events] == [
        (None, "alice", ""),
        (None, "", "203.0.113.9"),
    ]
    assert events[0].details["via"] == "reset_lockouts"


def test_reset_lockouts_with_user_name_and_address_lifts_both_and_nothing_else(alice, bob):
    fail("/login/", "carol", "203.0.113.5", 5)  # locks carol and 203.0.113.5
    fail("/login/", "bob", "198.51.100.7", 5)  # locks bob and 198.51.100.7
    fail("/login/", "alice", "192.0.2.50", 5)  # locks alice and 192.0.2.50

    call_command(
        "reset_lockouts", "--username", "alice", "--ip", "198.51.100.7", stdout=io.StringIO()
    )

    assert sign_in("/login/", "alice", PASSWORD, "192.0.2.1")[0].status_code == 302
    assert sign_in("/login/", "alice", PASSWORD, "198.51.100.7")[0].status_code == 302
    assert sign_in("/login/", "alice", PASSWORD, "203.0.113.5")[0].status_code == 429


def test_reset_lockouts_says_what_it_needs(db):
    with pytest.raises(CommandError, match="--username, --ip, or --all"):
        call_command("reset_lockouts")
    with pytest.raises(CommandError, match="not an IP address"):
        call_command("reset_lockouts", "--ip", "example.com")
    fail("/login/", "alice", "203.0.113.5", 2)
    out = io.StringIO()
    call_command("reset_lockouts", "--all", stdout=out)
    assert "1 failed sign-in record(s) removed" in out.getvalue()
    assert not AccessAttempt.objects.exists()


def test_a_forged_forwarded_for_header_does_not_buy_fresh_addresses(alice, settings):
    """Not behind a proxy (the default), X-Forwarded-For is whatever the client wrote."""
    settings.BEHIND_PROXY = False
    for n in range(5):
        Client(REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").post(
            "/login/", {"username": f"guess{n}", "password": "x"}
        )
    client = Client(REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR="10.9.9.9")
    response = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 429


def test_behind_a_proxy_the_address_the_proxy_recorded_counts(alice, settings):
    settings.BEHIND_PROXY = True
    settings.PROXY_COUNT = 1
    # The proxy (10.0.0.1) appends the address it saw; what the client sent comes before it.
    for n in range(5):
        Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=f"1.1.1.{n}, 203.0.113.5").post(
            "/login/", {"username": f"guess{n}", "password": "x"}
        )
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.5"}
    locked = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert locked.post("/login/", {"username": "alice", "password": PASSWORD}).status_code == 429
    # Another client through the same proxy is not locked with it.
    other = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert other.post("/login/", {"username": "alice", "password": PASSWORD}).status_code == 302


def test_lockouts_are_listed_in_admin_for_superusers(alice, client):
    fail("/login/", "mallory", "203.0.113.9", 5)
    client.force_login(alice)
    response = client.get("/admin/axes/accessattempt/")
    assert response.status_code == 200
    assert "mallory" in response.content.decode()
    assert "203.0.113.9" in response.content.decode()


# --- HTTPS and production settings ----------------------------------------------------------


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The README's production environment."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "FINDER_", "CELERY_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="inbox.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_DEBUG="0",
        DJANGO_HTTPS="1",
        DJANGO_ALLOWED_HOSTS="inbox.example.com",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://inbox.example.com",
        DATABASE_URL="postgres://finder@db.example.com:5432/finder_inbox",
        CELERY_BROKER_URL="redis://redis.example.com:6379/0",
        FINDER_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        FINDER_DATA_DIR=str(tmp_path),
    )
    env.update(extra)
    return env


def settings_under(env: dict[str, str], *names: str) -> dict:
    """The named settings as a fresh process with `env` computes them."""
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n, None) for n in {list(names)!r}}}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("switch", ["DJANGO_HTTPS", "DJANGO_SECURE_COOKIES"])
def test_check_deploy_reports_nothing_under_the_production_settings(switch, tmp_path):
    env = production_env(tmp_path)
    del env["DJANGO_HTTPS"]
    env[switch] = "1"
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout
    assert "WARNINGS" not in done.stdout + done.stderr


HTTPS_SETTINGS = (
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_PROXY_SSL_HEADER",
    "SESSION_COOKIE_AGE",
    "SESSION_SAVE_EVERY_REQUEST",
)


def test_https_switch_turns_on_redirect_hsts_and_secure_cookies(tmp_path):
    on = settings_under(production_env(tmp_path), *HTTPS_SETTINGS)
    assert on == {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        # Not behind a proxy unless told: nobody may claim HTTPS with a header.
        "SECURE_PROXY_SSL_HEADER": None,
        "SESSION_COOKIE_AGE": 8 * 3600,
        "SESSION_SAVE_EVERY_REQUEST": False,
    }
    tuned = settings_under(
        production_env(
            tmp_path,
            DJANGO_BEHIND_PROXY="1",
            DJANGO_HSTS_INCLUDE_SUBDOMAINS="0",
            DJANGO_SESSION_IDLE_SECONDS="900",
        ),
        *HTTPS_SETTINGS,
    )
    assert tuned["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert tuned["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False
    assert tuned["SESSION_COOKIE_AGE"] == 900
    off = settings_under(production_env(tmp_path, DJANGO_HTTPS="0"), *HTTPS_SETTINGS)
    assert off["SECURE_SSL_REDIRECT"] is False
    assert off["SECURE_HSTS_SECONDS"] == 0
    assert off["SESSION_COOKIE_SECURE"] is False


def test_the_old_secure_cookies_switch_still_trusts_its_proxy(tmp_path):
    env = production_env(tmp_path, DJANGO_SECURE_COOKIES="1")
    del env["DJANGO_HTTPS"]
    old = settings_under(env, *HTTPS_SETTINGS)
    assert old["SECURE_SSL_REDIRECT"] is True
    assert old["SESSION_COOKIE_SECURE"] is True
    # What the old settings did, so its TLS proxy does not loop on redirects to HTTPS.
    assert old["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_over_https_plain_http_redirects_and_responses_carry_hsts(settings, member_client):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    plain = member_client.get("/")
    assert plain.status_code == 301
    assert plain["Location"] == "https://testserver/"
    secure = member_client.get("/", HTTP_X_FORWARDED_PROTO="https")
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    # The load balancer's health check stays on plain HTTP.
    assert member_client.get("/healthz").status_code in (200, 503)


# --- idle sessions ------------------------------------------------------------------------------


def stored_session(client: Client) -> StoredSession:
    return StoredSession.objects.get(pk=client.cookies["sessionid"].value)


def test_a_session_lives_while_its_user_acts_not_while_the_tab_polls(member_client, synced):
    session = Session.objects.filter(account=synced).first()
    member_client.get(reverse("inbox:index"))
    # An hour left, last activity long ago.
    store = member_client.session
    store[IdleSessionMiddleware.ACTIVITY_KEY] = int(time.time()) - 3600
    store.save()
    an_hour_left = timezone.now() + timedelta(hours=1)
    StoredSession.objects.filter(pk=store.session_key).update(expire_date=an_hour_left)

    member_client.get(reverse("inbox:sessions_poll"), {"since": "0"})
    member_client.get(reverse("inbox:thread_poll", args=[session.pk]), {"since": "0"})
    assert stored_session(member_client).expire_date == an_hour_left

    member_client.get(session.get_absolute_url())
    moved = stored_session(member_client).expire_date - timezone.now()
    assert timedelta(hours=7, minutes=59) < moved <= timedelta(hours=8)

    # Once the idle time has run out, the next request, poll or not, is signed out.
    StoredSession.objects.filter(pk=store.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    response = member_client.get(reverse("inbox:index"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_activity_moves_the_expiry_at_most_once_every_five_minutes(member_client):
    store = member_client.session
    store[IdleSessionMiddleware.ACTIVITY_KEY] = int(time.time()) - 301
    store.save()
    url = reverse("inbox:index")

    with CaptureQueriesContext(connection) as stale:
        member_client.get(url)
    with CaptureQueriesContext(connection) as fresh:
        member_client.get(url)

    def session_writes(captured) -> int:
        return sum(q["sql"].startswith("UPDATE") and "django_session" in q["sql"] for q in captured)

    assert session_writes(stale.captured_queries) == 1
    assert session_writes(fresh.captured_queries) == 0


# --- Content-Security-Policy ----------------------------------------------------------------


INLINE = re.compile(
    r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+\s*=|\shx-on[:-]", re.IGNORECASE
)


def csp_directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {
        part.split()[0]: part.split()[1:] for part in (p.strip() for p in header.split(";")) if part
    }


def test_templates_have_no_inline_script_style_or_handler():
    offenders = []
    for folder in ("templates", "accounts/templates", "inbox/templates"):
        for path in sorted((ROOT / folder).rglob("*.html")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if INLINE.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_pages_carry_a_csp_without_unsafe_inline_and_render_nothing_inline(
    member_client, synced, client
):
    admin = User.objects.create_superuser("root", password="pw")
    wang = Session.objects.filter(account=synced, messages__msg_type=Message.Type.IMAGE).first()
    pages = {
        "index": member_client.get(reverse("inbox:index")),
        "thread with an image": member_client.get(wang.get_absolute_url()),
        "search": member_client.get(reverse("inbox:search"), {"q": "尺码"}),
        "sign-in": Client().get(reverse("login")),
    }
    client.force_login(admin)
    for path in [
        "/admin/",
        "/admin/accounts/account/",
        f"/admin/accounts/account/{synced.pk}/change/",
        "/admin/inbox/session/",
        "/admin/auth/user/add/",
        "/admin/axes/accessattempt/",
        "/admin/accounts/auditevent/",
    ]:
        pages[path] = client.get(path)
    for name, response in pages.items():
        assert response.status_code == 200, name
        directives = csp_directives(response)
        assert directives["script-src"] == ["'self'"], name
        assert directives["style-src"] == ["'self'"], name
        assert directives["object-src"] == ["'none'"], name
        assert directives["frame-ancestors"] == ["'none'"], name
        assert "unsafe" not in response["Content-Security-Policy"], name
        html = response.content.decode()
        assert not INLINE.search(html), (name, INLINE.search(html).group(0))
    assert "data-aspect-ratio=" in pages["thread with an image"].content.decode()


def test_a_refused_form_explains_itself_without_inline_styles(alice):
    """Django's own CSRF failure page has an inline stylesheet the CSP would block."""
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 403
    html = response.content.decode()
    assert "it was open for too long, or it was sent from another site" in html
    assert not INLINE.search(html)
    assert not signed_in(client)


def test_htmx_is_told_not_to_inject_styles_or_evaluate_code(member_client):
    html = member_client.get(reverse("inbox:index")).content.decode()
    config = json.loads(re.search(r"<meta name=\"htmx-config\" content='([^']+)'>", html).group(1))
    assert config["includeIndicatorStyles"] is False
    assert config["allowEval"] is False
    assert config["allowScriptTags"] is False
    assert "style" not in config["attributesToSettle"]
    css = (ROOT / "static/inbox/inbox.css").read_text()
    assert ".htmx-request .htmx-indicator" in css


# --- request bodies -------------------------------------------------------------------------


class RecordingUploadHandler(FileUploadHandler):
    """Counts every byte Django's multipart parser hands to upload handlers."""

    files: list[str] = []
    received = 0

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        RecordingUploadHandler.files.append(self.file_name)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        RecordingUploadHandler.received += len(raw_data)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


@pytest.fixture
def recording_uploads(settings, tmp_path):
    RecordingUploadHandler.files = []
    RecordingUploadHandler.received = 0
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    settings.FILE_UPLOAD_HANDLERS = [
        "tests.test_security.RecordingUploadHandler",
        "django.core.files.uploadhandler.MemoryFileUploadHandler",
        "django.core.files.uploadhandler.TemporaryFileUploadHandler",
    ]
    return tmp_path


def test_a_60_mb_upload_is_refused_before_its_body_is_read(
    member_client, synced, settings, recording_uploads
):
    settings.PUBLIC_BASE_URL = "https://inbox.example.com"
    session = Session.objects.filter(account=synced).first()
    body = encode_multipart(
        "BoUnDaRy",
        {
            "client_token": "8f0f2b64-6a43-4d4c-9a44-4f5d0c6c2a11",
            "image": _named(io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\0" * (60 << 20)), "big.png"),
        },
    )
    before = Message.objects.count()

    response = member_client.generic(
        "POST",
        reverse("inbox:send_image", args=[session.pk]),
        body,
        content_type="multipart/form-data; boundary=BoUnDaRy",
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 413
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode().replace("\xa0", " ") == (
        "The upload is too large (60.0 MB). Images can be at most 5.0 MB."
    )
    assert response["Content-Security-Policy"]  # answered inside the security middleware
    assert RecordingUploadHandler.files == []
    assert RecordingUploadHandler.received == 0
    assert list(recording_uploads.iterdir()) == []
    assert Message.objects.count() == before

    # An image at the limit, with its form, still reaches the form (which refuses it for not
    # being a picture), held in memory: no temporary file either.
    image = _named(io.BytesIO(b"not a picture" + b"\0" * (MAX_IMAGE_BYTES - 13)), "big.png")
    body = encode_multipart(
        "BoUnDaRy", {"client_token": "8f0f2b64-6a43-4d4c-9a44-4f5d0c6c2a11", "image": image}
    )
    response = member_client.generic(
        "POST",
        reverse("inbox:send_image", args=[session.pk]),
        body,
        content_type="multipart/form-data; boundary=BoUnDaRy",
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    assert RecordingUploadHandler.received == MAX_IMAGE_BYTES
    assert list(recording_uploads.iterdir()) == []
    # A Content-Length that is not a number is Django's to handle (it reads no body at all).
    response = member_client.generic(
        "POST", reverse("inbox:compose", args=[session.pk]), b"", CONTENT_LENGTH="lots"
    )
    assert response.status_code != 413


def test_the_refusal_comes_before_the_client_has_sent_the_body(live_server, member, settings):
    """Over a real socket: headers announcing 60 MB and a first few bytes are answered 413 at
    once; a server that read the body first would still be waiting for the other 60 MB."""
    settings.PUBLIC_BASE_URL = "https://inbox.example.com"
    session = Session.objects.filter(account__members=member).first()
    url = urlparse(live_server.url)
    with socket.create_connection((url.hostname, url.port), timeout=5) as conn:
        conn.sendall(
            (
                f"POST {reverse('inbox:send_image', args=[session.pk])} HTTP/1.1\r\n"
                f"Host: {url.hostname}:{url.port}\r\n"
                "Content-Type: multipart/form-data; boundary=BoUnDaRy\r\n"
                f"Content-Length: {60 << 20}\r\n\r\n"
                "--BoUnDaRy\r\n"
            ).encode()
        )
        answer = conn.recv(4096).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413 ")


def _named(stream: io.BytesIO, name: str) -> io.BytesIO:
    stream.name = name
    return stream
