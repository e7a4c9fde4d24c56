"""`python manage.py demo`: the whole system on one machine with nothing installed.

Prepares the database, makes two logins, starts the sandbox upstream (a new private letter every
few seconds), registers its account, then runs web (runserver), a Celery worker and Celery beat as
child processes on the embedded defaults, and prints letters as the worker stores them. Ctrl-C or
SIGTERM stops every child and waits for it.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.utils.text import Truncator

from accounts import crypto, services
from accounts.client import VideosApiError
from accounts.models import Account
from accounts.sandbox import DEMO_APP_ID, DEMO_TOKEN, PEERS, SandboxServer, start_sandbox
from inbox import demo_history
from inbox.models import Message
from inbox.tasks import sync_account

ADMIN_USERNAME = "demo-admin"
AGENT_USERNAME = "demo-agent"
# How long children get to finish what they are doing (a worker finishes its current pass)
# before they are killed.
STOP_GRACE_SECONDS = 20
WELCOME_LETTER = "你好！刚看完直播，想问一下今天的优惠还有吗？"
# More letters than this arriving at once (the first pass reads the history) are summed up.
LIST_AT_MOST = 3


@dataclass
class Child:
    name: str
    process: subprocess.Popen


class Command(BaseCommand):
    help = (
        "Run the demo: web, Celery worker and beat on the embedded defaults, against a sandbox "
        "upstream that writes new private letters every few seconds. Prints the logins. Ctrl-C "
        "stops everything."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=8000, help="Web port (127.0.0.1).")
        parser.add_argument("--sandbox-port", type=int, default=8765)
        parser.add_argument(
            "--live-interval",
            type=float,
            default=4.0,
            help="Seconds between new letters from the sandbox.",
        )
        parser.add_argument("--concurrency", type=int, default=2, help="Worker processes.")
        parser.add_argument("--loglevel", default="warning", help="Worker and beat log level.")
        parser.add_argument("--no-web", action="store_true", help="Do not start runserver.")
        parser.add_argument("--no-worker", action="store_true", help="Do not start a worker.")
        parser.add_argument("--no-beat", action="store_true", help="Do not start beat.")

    def handle(self, *args, **options) -> None:
        self.stopping = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)

        self.stdout.write("Preparing the database…")
        call_command("migrate", interactive=False, verbosity=0)
        self._compile_translations()
        passwords = self._demo_users()
        sandbox = self._start_sandbox(options["sandbox_port"], options["live_interval"])
        try:
            account = self._register(sandbox)
            self._history(account)
            # Waiting in the broker, the first pass starts the moment the worker is up.
            sync_account.delay(account.pk)
            children = self._start_children(options)
            self._banner(options, sandbox, account, passwords, children)
            try:
                failed = self._watch(children)
            finally:
                self._stop(children)
        finally:
            sandbox.shutdown()
        if failed:
            raise CommandError(f"{failed} stopped unexpectedly; stopped the rest too.")
        self.stdout.write("Demo stopped.")

    def _on_signal(self, signum, frame) -> None:
        if self.stopping.is_set():
            return
        self.stdout.write(f"\n{signal.Signals(signum).name}: stopping web, worker and beat…")
        self.stopping.set()

    # --- setting up ----------------------------------------------------------------------------

    def _compile_translations(self) -> None:
        """The .mo files are committed; compiling only refreshes them after a .po edit."""
        if shutil.which("msgfmt") is None or not any(
            os.path.isdir(path) for path in settings.LOCALE_PATHS
        ):
            return
        try:
            # Only the project's own locale folders (LOCALE_PATHS), not every one under the cwd.
            call_command("compilemessages", ignore_patterns=["*"], verbosity=0)
        except CommandError as exc:
            self.stderr.write(f"Could not compile translations ({exc}); using the committed ones.")

    def _demo_users(self) -> dict[str, str]:
        """A superuser for admin and a support agent who works the sandbox account. New random
        passwords on every start, since these are well-known user names."""
        users = get_user_model()
        passwords = {}
        for username, superuser in ((ADMIN_USERNAME, True), (AGENT_USERNAME, False)):
            user, _ = users.objects.get_or_create(username=username)
            user.is_staff = user.is_superuser = superuser
            user.is_active = True
            passwords[username] = secrets.token_urlsafe(9)
            user.set_password(passwords[username])
            user.save()
        return passwords

    def _start_sandbox(self, port: int, live_interval: float) -> SandboxServer:
        try:
            sandbox = start_sandbox(port=port, live_interval=live_interval, demo_account=True)
        except OSError as exc:
            raise CommandError(
                f"cannot serve the sandbox on port {port} ({exc}); try --sandbox-port"
            ) from None
        # A letter that came in while the demo was stopped, so every start shows one arriving.
        sandbox.state.add_letter(DEMO_APP_ID, WELCOME_LETTER, peer=PEERS[2])
        return sandbox

    def _register(self, sandbox: SandboxServer) -> Account:
        call_command(
            "add_account",
            name="Sandbox shop",
            app_id=DEMO_APP_ID,
            token_stdin=True,
            stdin=io.StringIO(DEMO_TOKEN),
            base_url=sandbox.base_url,
            member=[AGENT_USERNAME],
            stdout=io.StringIO(),
        )
        account = Account.objects.get(app_id=DEMO_APP_ID)
        # The sandbox forgets everything when the demo stops, so a cursor into the last run's
        # sandbox means nothing now: read it from the start (stored letters are skipped), and
        # forget any lease or pause the last run left behind.
        Account.objects.filter(pk=account.pk).update(
            enabled=True,
            paused_reason="",
            key_buff="",
            next_sync_at=None,
            sync_lease_token="",
            sync_lease_until=None,
        )
        try:
            services.check_connection(account)
        except VideosApiError as exc:
            self.stderr.write(f"getProfile failed: {exc}")
        account.refresh_from_db()
        return account

    def _history(self, account: Account) -> None:
        """Three weeks of conversations before today, so the report page has figures at once;
        made on the first start, before the worker reads the sandbox (a day per transaction, so
        the first days show while the rest is made)."""
        if demo_history.has_history(account):
            return
        users = get_user_model()
        agents = list(users.objects.filter(username__in=[AGENT_USERNAME, ADMIN_USERNAME]))
        letters = demo_history.make_history(account, agents, stop=self.stopping.is_set)
        self.stdout.write(f"Stored 3 weeks of history ({letters} letters).")

    def _start_children(self, options) -> list[Child]:
        python = sys.executable
        env = {
            **os.environ,
            "FINDER_DATA_DIR": str(settings.DATA_DIR),
            # The keys this process encrypted the token with: FINDER_ENCRYPTION_KEY's, or the key
            # generated into the data folder on the first start (kept there, so a restarted demo
            # still decrypts what the last one stored).
            "FINDER_ENCRYPTION_KEY": ",".join(crypto.configured_keys()),
            "PYTHONUNBUFFERED": "1",
        }
        commands = []
        if not options["no_web"]:
            # runserver serves static files only with DEBUG on; the demo is local.
            web_env = {"DJANGO_DEBUG": os.environ.get("DJANGO_DEBUG", "1")}
            manage = str(settings.BASE_DIR / "manage.py")
            address = f"127.0.0.1:{options['port']}"
            commands.append(("web", [python, manage, "runserver", address, "--noreload"], web_env))
        celery = [python, "-m", "celery", "-A", "inbox"]
        if not options["no_worker"]:
            worker = [
                *celery,
                "worker",
                f"--loglevel={options['loglevel']}",
                f"--concurrency={options['concurrency']}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ]
            commands.append(("worker", worker, {}))
        if not options["no_beat"]:
            commands.append(("beat", [*celery, "beat", f"--loglevel={options['loglevel']}"], {}))
        children = []
        for name, command, extra_env in commands:
            # Each child leads its own process group: Ctrl-C reaches only this command, which
            # then stops each child once and in order, and can reach a worker's pool processes.
            process = subprocess.Popen(
                command, env={**env, **extra_env}, cwd=settings.BASE_DIR, start_new_session=True
            )
            children.append(Child(name, process))
        return children

    def _banner(self, options, sandbox, account, passwords, children) -> None:
        web = f"http://127.0.0.1:{options['port']}"
        running = ", ".join(child.name for child in children) or "nothing"
        self.stdout.write(
            "\n"
            f"Finder Inbox demo ({running} starting; data in {settings.DATA_DIR})\n"
            f"  Inbox   {web}/        log in as {AGENT_USERNAME} / {passwords[AGENT_USERNAME]}\n"
            f"  Admin   {web}/admin/  log in as {ADMIN_USERNAME} / {passwords[ADMIN_USERNAME]}\n"
            f"  Health  {web}/healthz\n"
            f"  Sandbox {sandbox.base_url} ({account.nickname or account.name}) writes a new "
            f"letter every {options['live_interval']:g} s.\n"
            "New letters are printed below as the worker stores them. Ctrl-C stops everything.\n"
        )

    # --- running -------------------------------------------------------------------------------

    def _watch(self, children: list[Child]) -> str | None:
        """Print letters as they are stored until a signal comes or a child dies; returns the
        name of a child that died."""
        last_seen = Message.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        while not self.stopping.wait(1.0):
            for child in children:
                if child.process.poll() is not None:
                    self.stderr.write(f"{child.name} exited with status {child.process.returncode}")
                    return child.name
            last_seen = self._print_new_letters(last_seen)
        return None

    def _print_new_letters(self, last_seen: int) -> int:
        new = list(
            Message.objects.filter(pk__gt=last_seen, kind=Message.Kind.LETTER)
            .select_related("session")
            .order_by("pk")
        )
        if not new:
            return last_seen
        incoming = [message for message in new if not message.is_sender]
        if len(incoming) > LIST_AT_MOST:
            sessions = len({message.session_id for message in new})
            self.stdout.write(f"Stored {len(new)} letters in {sessions} conversations.")
        else:
            for message in incoming:
                self.stdout.write(
                    f"New letter from {message.session.display_name}: {_gist(message)}"
                )
        return new[-1].pk

    def _stop(self, children: list[Child]) -> None:
        """SIGTERM to each child still running (a worker finishes its current task first), then
        wait; whatever is left after the grace period, its whole process group, is killed."""
        for child in children:
            if child.process.poll() is None:
                # The child alone: a worker stops its own pool processes in order.
                child.process.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in children:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{child.name} did not stop in time; killing it")
            # Also whatever the child left behind in its group (a worker's pool processes).
            _signal_group(child.process, signal.SIGKILL)
            child.process.wait()


def _gist(message: Message) -> str:
    if message.msg_type == Message.Type.TEXT:
        return Truncator(" ".join(message.content.split())).chars(60)
    if message.msg_type in Message.Type.values:
        return f"[{Message.Type(message.msg_type).label}]"
    return f"[type {message.msg_type}]"


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
        os.killpg(process.pid, signum)
