"""Finder Inbox settings: every knob comes from the environment, with defaults that run on one
machine with nothing else installed (an SQLite file and a broker kept in a folder)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
# Everything the app writes at run time (SQLite file, embedded broker, beat schedule, media) lives
# here, outside the source tree's tracked files.
DATA_DIR = Path(os.environ.get("FINDER_DATA_DIR", BASE_DIR / "var"))
DATA_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)
# The fallback lets a fresh clone run; `manage.py check --deploy` flags it, and production sets
# DJANGO_SECRET_KEY.
SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "django-insecure-finder-inbox-development-key-set-DJANGO_SECRET_KEY"
)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "csp",
    "inbox.apps.SignInLockoutsConfig",  # django-axes
    "accounts",
    "inbox",
    "inbox.live.apps.LiveConfig",
    "inbox.viewers.apps.ViewersConfig",
    "inbox.team.apps.TeamConfig",
    "inbox.labels.apps.LabelsConfig",
    "inbox.organize.apps.OrganizeConfig",
    "inbox.pictures.apps.PicturesConfig",
    "inbox.suggestions.apps.SuggestionsConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # Before anything reads the body (CSRF reads the form), after the language is known.
    "inbox.middleware.RequestBodyLimitMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "inbox.middleware.IdleSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "inbox.urls"
WSGI_APPLICATION = "inbox.wsgi.application"
ASGI_APPLICATION = "inbox.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["ENGINE"] = "inbox.sqlite_backend"  # see its docstring
    # The embedded default serves web, worker and beat from one file at once: WAL lets readers
    # run beside the writer, IMMEDIATE takes the write lock when a transaction starts (so two
    # writers queue instead of failing on lock upgrade), and the timeout is how long they queue.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "inbox:index"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = os.environ.get("DJANGO_LANGUAGE_CODE", "zh-hans")
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("INBOX_TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles"))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("DJANGO_MEDIA_ROOT", DATA_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Web security ----------------------------------------------------------------------------
# DJANGO_HTTPS=1 when the site is served over HTTPS (by itself or by a TLS proxy): plain HTTP
# redirects to HTTPS, browsers are told to stay on HTTPS (HSTS), and the session and CSRF cookies
# travel only over TLS. DJANGO_SECURE_COOKIES=1 is its old name and still works.
_SECURE_COOKIES_ALIAS = env_bool("DJANGO_SECURE_COOKIES", False)
HTTPS = env_bool("DJANGO_HTTPS", _SECURE_COOKIES_ALIAS)
# DJANGO_BEHIND_PROXY=1 when a reverse proxy you run terminates TLS and sets X-Forwarded-Proto and
# X-Forwarded-For, overwriting whatever the client sent. Off, both headers are ignored: anyone
# could otherwise claim HTTPS, or a fresh address for every guess at a password.
# DJANGO_PROXY_COUNT is how many such proxies append to X-Forwarded-For.
BEHIND_PROXY = env_bool("DJANGO_BEHIND_PROXY", False)
PROXY_COUNT = int(os.environ.get("DJANGO_PROXY_COUNT", "1"))
# The old settings trusted X-Forwarded-Proto whenever DEBUG was off; a deployment still on the
# old switch keeps that, or its TLS proxy would now see endless redirects to HTTPS.
if BEHIND_PROXY or (_SECURE_COOKIES_ALIAS and not DEBUG):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = HTTPS
# Load balancers check health over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000" if HTTPS else "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
# Preloading binds the whole registered domain, in browsers' built-in lists, for months: the
# domain's owner decides, not this app. Each choice made here is one `check --deploy` need not
# repeat as a warning.
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [
    *([] if SECURE_HSTS_INCLUDE_SUBDOMAINS else ["security.W005"]),
    *([] if SECURE_HSTS_PRELOAD else ["security.W021"]),
]

# A signed-in session ends after this long without the user doing anything; background polls
# do not count as doing something (inbox.middleware.IdleSessionMiddleware).
SESSION_COOKIE_AGE = int(os.environ.get("DJANGO_SESSION_IDLE_SECONDS", str(8 * 3600)))

# Content-Security-Policy (django-csp): scripts and styles only from our own static files, never
# inline, so an injected tag or attribute cannot run. Pictures too come only from our own
# origin: image letters, share card covers and avatars are downloaded by the workers and served
# from our storage (inbox.pictures, inbox.viewers), so no letter tells WeChat or a sender's
# host who opened it. DJANGO_CSP_IMG_SRC adds sources (e.g. a CDN in front of MEDIA_URL).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", *env_list("DJANGO_CSP_IMG_SRC", "")],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Request bodies: the largest thing anyone posts is an image reply (inbox.services
# MAX_IMAGE_BYTES, 5 MB) with its form. Anything bigger is refused by its Content-Length before
# a byte of it is read (inbox.middleware.RequestBodyLimitMiddleware); what is accepted stays in
# memory instead of a temporary file.
MAX_REQUEST_BODY_BYTES = int(os.environ.get("DJANGO_MAX_REQUEST_BODY_BYTES", str(6 << 20)))
FILE_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES
DATA_UPLOAD_MAX_MEMORY_SIZE = 1 << 20

# --- Sign-in throttling (django-axes) --------------------------------------------------------
# After LOGIN_FAILURE_LIMIT failed sign-ins for one user name, or from one address, both the
# inbox's and admin's sign-in refuse that user name, or that address, for LOGIN_LOCKOUT_MINUTES
# (every further try restarts the wait). Either alone locks: a password guesser spreading over
# many addresses is stopped by the user name, one trying many user names by the address.
# `manage.py reset_lockouts` lifts a lockout early; admin lists them under Axes.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("LOGIN_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_LOCKOUT_CALLABLE = "inbox.lockouts.lockout_response"
# Failures count until the cool-off passes, not until the next success: one valid login of
# their own must not let an insider wipe their failed guesses at a colleague's password.
AXES_RESET_ON_SUCCESS = False
# The client's address: the connection's own, or behind DJANGO_BEHIND_PROXY the one our proxies
# wrote into X-Forwarded-For (see inbox.middleware.client_address).
AXES_CLIENT_IP_CALLABLE = "inbox.middleware.client_address"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # urllib3 logs retried requests with their URL only, never headers; keep it quiet anyway.
        "urllib3": {"level": "WARNING"},
    },
}

# --- Secrets at rest ---------------------------------------------------------------------------
# Fernet keys that encrypt account tokens in the database, comma-separated, newest first (older
# ones only decrypt, for rotation; see accounts.crypto). Required in production (`check --deploy`
# says so); without it, development uses a key generated into FINDER_DATA_DIR.
FINDER_ENCRYPTION_KEYS = env_list("FINDER_ENCRYPTION_KEY", "")

# --- VideosApi (the upstream) ---------------------------------------------------------------
VIDEOSAPI_BASE_URL = os.environ.get("VIDEOSAPI_BASE_URL", "http://api.videostui.com/finder/v2/api")
VIDEOSAPI_CONNECT_TIMEOUT = float(os.environ.get("VIDEOSAPI_CONNECT_TIMEOUT", "5"))
VIDEOSAPI_READ_TIMEOUT = float(os.environ.get("VIDEOSAPI_READ_TIMEOUT", "30"))
VIDEOSAPI_RETRIES = int(os.environ.get("VIDEOSAPI_RETRIES", "3"))
# A Retry-After longer than this is shortened to it: a worker holding an account's lease must not
# sleep for as long as the upstream asks (an hour, if it says so).
VIDEOSAPI_MAX_RETRY_AFTER_SECONDS = float(os.environ.get("VIDEOSAPI_MAX_RETRY_AFTER_SECONDS", "5"))
# A sync page far larger than this is refused rather than read into memory.
VIDEOSAPI_MAX_RESPONSE_BYTES = int(os.environ.get("VIDEOSAPI_MAX_RESPONSE_BYTES", str(32 << 20)))

# --- Sync ---------------------------------------------------------------------------------
SYNC_MAX_PAGES_PER_PASS = int(os.environ.get("SYNC_MAX_PAGES_PER_PASS", "50"))
# How long a pass may hold an account before another worker may take it over; renewed on every
# page, so it only matters when a worker dies mid-pass.
SYNC_LEASE_SECONDS = int(os.environ.get("SYNC_LEASE_SECONDS", "120"))
SYNC_DEFAULT_INTERVAL_SECONDS = int(os.environ.get("SYNC_DEFAULT_INTERVAL_SECONDS", "5"))
SYNC_BACKOFF_MAX_SECONDS = int(os.environ.get("SYNC_BACKOFF_MAX_SECONDS", "600"))
# A pass's whole time, requests, retries and backoff included, stays under its lease: it stops
# paging (and queues the rest) rather than run into the time another worker may take over.
SYNC_PASS_SECONDS = int(os.environ.get("SYNC_PASS_SECONDS", str(SYNC_LEASE_SECONDS * 3 // 4)))
# While an account's device is offline (an outage, not a pause), how often sync probes it: from
# the first to the second, doubling.
SYNC_OUTAGE_PROBE_MIN_SECONDS = int(os.environ.get("SYNC_OUTAGE_PROBE_MIN_SECONDS", "60"))
SYNC_OUTAGE_PROBE_MAX_SECONDS = int(os.environ.get("SYNC_OUTAGE_PROBE_MAX_SECONDS", "300"))

# --- Celery ---------------------------------------------------------------------------------
# Redis in production (CELERY_BROKER_URL=redis://…); with nothing set, the embedded broker below.
# (localhost only to spare kombu a warning: the folder below is the whole address.)
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "filesystem://localhost/"
CELERY_BROKER_FOLDER = DATA_DIR / "broker"
# A sync pass is bounded by SYNC_MAX_PAGES_PER_PASS pages; the soft limit stops a pass stuck on a
# slow upstream (its current page rolls back, the cursor stays, the failure is recorded) and the
# hard limit kills what ignores the soft one. Both apply to every task: nothing here should run
# for minutes.
CELERY_TASK_SOFT_TIME_LIMIT = int(os.environ.get("CELERY_TASK_SOFT_TIME_LIMIT", "240"))
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 30
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The embedded broker: messages are files in one folder, shared by every process of this
    # checkout, so the demo runs a real worker and beat with no server to install. The control
    # folder (broadcast tables) would otherwise land in the current directory.
    CELERY_BROKER_FOLDER.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_FOLDER),
        "data_folder_out": str(CELERY_BROKER_FOLDER),
        "control_folder": str(CELERY_BROKER_FOLDER / "control"),
        # A folder cannot wake its readers; how often a worker looks (a directory listing).
        "polling_interval": 0.5,
    }
else:
    # Redis hands an unacknowledged message to another worker after the visibility timeout; it
    # must be longer than the longest task, or a pass still running gets a twin.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT * 3}
    if os.environ.get("CELERY_BROKER_KEY_PREFIX"):
        # Lets several deployments (or a test run beside a demo) share one Redis database.
        CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = os.environ["CELERY_BROKER_KEY_PREFIX"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Live: presence, who is viewing or typing, events to open tabs (inbox.live) -------------
# Kept in Redis under its own key prefix: LIVE_REDIS_URL, by default the broker's when that is
# Redis; with the embedded broker, in each web process's memory (exact with one web process).
LIVE_REDIS_URL = os.environ.get("LIVE_REDIS_URL") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else ""
)
LIVE_KEY_PREFIX = os.environ.get("LIVE_KEY_PREFIX", "finder:live:")
# An agent who chose "online" shows as away after this long without touching the inbox.
LIVE_AWAY_AFTER_MINUTES = float(os.environ.get("LIVE_AWAY_AFTER_MINUTES", "10"))
# A tab counts as open this long after its last heartbeat (a hidden tab beats every 15 s).
LIVE_TAB_SECONDS = int(os.environ.get("LIVE_TAB_SECONDS", "45"))
# "Viewing" and "typing" last this long after the heartbeat that said so (an open thread beats
# every 2 s, so others see a change within about 3 s, or at once with server-sent events).
LIVE_VIEW_SECONDS = int(os.environ.get("LIVE_VIEW_SECONDS", "5"))
# How long a tab's signed heartbeat token is taken without asking the database who is signed in.
LIVE_TOKEN_SECONDS = int(os.environ.get("LIVE_TOKEN_SECONDS", "600"))
# Server-sent events (/live/events/) need an ASGI server for that path (README, "Team
# features"); under WSGI the endpoint answers 204 and tabs keep polling. Off: no tab tries.
LIVE_SSE = env_bool("LIVE_SSE", True)
# One events connection lasts at most this long (the browser reconnects at once): a signed-out
# user's stream ends with it. A comment line every keep-alive interval keeps proxies from
# closing a quiet one.
LIVE_SSE_MAX_SECONDS = int(os.environ.get("LIVE_SSE_MAX_SECONDS", "300"))
LIVE_SSE_KEEPALIVE_SECONDS = int(os.environ.get("LIVE_SSE_KEEPALIVE_SECONDS", "15"))
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_TASK_IGNORE_RESULT = True

# Sync passes get their own queue so a backlog of them never delays a reply a person is waiting
# for (replies and beat's small tasks use the default queue), and so do picture downloads, so a
# hanging upstream or a row of "Load image" clicks cannot hold up replies either. A worker started
# without -Q consumes all three; production gives each its own workers.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = [Queue(name, routing_key=name) for name in ("celery", "sync", "images")]
CELERY_TASK_ROUTES = {
    "inbox.tasks.sync_account": {"queue": "sync"},
    "inbox.tasks.fill_peer_nicknames": {"queue": "sync"},
    "inbox.tasks.fetch_image_url": {"queue": "images"},
    "inbox.tasks.fetch_viewer_avatar": {"queue": "images"},
    "inbox.pictures.tasks.fetch_thumbnail": {"queue": "images"},
}
# The sync tasks are idempotent (lease, unique NewMsgId, cursor committed with its page), so they
# are acknowledged only when done and handed back to the queue if their worker dies mid-pass:
# the pass is re-run rather than lost. Not the default for every task: a reply the upstream has
# accepted must not be sent twice.
CELERY_TASK_ANNOTATIONS = {
    name: {"acks_late": True, "reject_on_worker_lost": True}
    for name in ("inbox.tasks.sync_account", "inbox.tasks.fill_peer_nicknames")
}
# One message per worker process at a time: a pass can take long, and a prefetched message would
# wait behind it while another process sits idle (and would count towards its visibility timeout).
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# When the broker connection drops, a late-acknowledged task will be redelivered anyway; cancel
# it rather than let it run on beside its own redelivery.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True

# Beat's tick: how late an account's poll may start at most. Each account's own poll_interval
# (default SYNC_DEFAULT_INTERVAL_SECONDS) decides when it is due.
SYNC_BEAT_SECONDS = float(os.environ.get("SYNC_BEAT_SECONDS", "2"))
# --- Team (inbox.team) -----------------------------------------------------------------------
# A letter written within this many seconds is news: it notifies and is auto-assigned. Older
# letters that sync brings (a backlog, an outage caught up) are history and do neither.
TEAM_LIVE_SECONDS = int(os.environ.get("TEAM_LIVE_SECONDS", "900"))
# How often beat hands out conversations still waiting for an agent (someone came online, or
# dropped below their cap).
TEAM_ASSIGN_SWEEP_SECONDS = float(os.environ.get("TEAM_ASSIGN_SWEEP_SECONDS", "30"))
# Each agent keeps this many of their newest notifications; beat deletes older ones daily.
TEAM_NOTIFICATIONS_KEPT = int(os.environ.get("TEAM_NOTIFICATIONS_KEPT", "1000"))

CELERY_BEAT_SCHEDULE = {
    "sync-due-accounts": {
        "task": "inbox.tasks.sync_due_accounts",
        "schedule": SYNC_BEAT_SECONDS,
        # A tick nobody picked up is superseded by the next one.
        "options": {"expires": SYNC_BEAT_SECONDS * 5},
    },
    "reopen-snoozed-sessions": {
        "task": "inbox.tasks.reopen_snoozed_sessions",
        "schedule": 30.0,
        "options": {"expires": 60},
    },
    "fail-stuck-sends": {
        "task": "inbox.tasks.fail_stuck_sends",
        "schedule": 60.0,
        "options": {"expires": 120},
    },
    "requeue-unclaimed-replies": {
        "task": "inbox.tasks.requeue_unclaimed_replies",
        "schedule": 60.0,
        "options": {"expires": 120},
    },
    "prune-pictures": {
        "task": "inbox.pictures.tasks.prune_pictures",
        "schedule": 24 * 3600.0,
        "options": {"expires": 3600},
    },
    "assign-waiting-conversations": {
        "task": "inbox.team.tasks.assign_waiting_everywhere",
        "schedule": TEAM_ASSIGN_SWEEP_SECONDS,
        "options": {"expires": TEAM_ASSIGN_SWEEP_SECONDS * 2},
    },
    "prune-notifications": {
        "task": "inbox.team.tasks.prune_notifications",
        "schedule": 24 * 3600.0,
        "options": {"expires": 3600},
    },
}

# --- Pictures of image letters ---------------------------------------------------------------
# Someone is looking at a spinner: one download (downloadImage, every size tried) gets this many
# seconds in all, with short timeouts and no retries; the task's own time limits sit just above.
IMAGE_FETCH_SECONDS = int(os.environ.get("IMAGE_FETCH_SECONDS", "20"))
IMAGE_FETCH_READ_TIMEOUT = float(os.environ.get("IMAGE_FETCH_READ_TIMEOUT", "8"))
# A letter's queued download blocks further ones for this long; past the task's hard time limit,
# so a claim still held then belongs to a task that was lost.
IMAGE_FETCH_CLAIM_SECONDS = IMAGE_FETCH_SECONDS + 40
# Every picture fetched is kept under MEDIA_ROOT/pictures (inbox.pictures), named by its hash;
# a download larger than this is refused (and the letter says so) rather than stored.
PICTURES_MAX_BYTES = int(os.environ.get("PICTURES_MAX_BYTES", str(10 << 20)))
# A stored picture nobody has been shown for this many days is deleted by beat's daily sweep
# (or `manage.py prune_pictures`); its letters then say so. 0 keeps pictures for ever.
PICTURES_RETENTION_DAYS = int(os.environ.get("PICTURES_RETENTION_DAYS", "180"))
# Opening a thread queues its image letters' thumbnails, spaced so that one account's device is
# asked for at most this many a second; what would have to wait longer than
# PICTURES_QUEUE_AHEAD_SECONDS is left for a later open instead of piling up in the queue.
PICTURES_PER_SECOND_PER_ACCOUNT = float(os.environ.get("PICTURES_PER_SECOND_PER_ACCOUNT", "3"))
PICTURES_QUEUE_AHEAD_SECONDS = float(os.environ.get("PICTURES_QUEUE_AHEAD_SECONDS", "60"))
# A thumbnail that could not be fetched is asked for again by an open after this long.
PICTURES_RETRY_SECONDS = int(os.environ.get("PICTURES_RETRY_SECONDS", "600"))
# How long a browser may keep a picture it was shown (privately: never a shared cache).
PICTURES_CACHE_SECONDS = int(os.environ.get("PICTURES_CACHE_SECONDS", str(7 * 24 * 3600)))
# The thumbnail limiter's schedule is shared through Redis (the broker's by default) so every
# web process keeps to one rate per account; without Redis, each process keeps its own.
PICTURES_REDIS_URL = os.environ.get("PICTURES_REDIS_URL") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else ""
)
PICTURES_KEY_PREFIX = os.environ.get("PICTURES_KEY_PREFIX", "finder:pictures:")

# --- Replies ---------------------------------------------------------------------------------
# Where the upstream can fetch uploaded images from; image replies are off without it.
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "")
# A reply no worker has claimed this long after it was queued lost its send task (the broker was
# down, or a worker died holding it): beat's sweep queues it again, up to REPLY_MAX_REQUEUES
# times, and then fails it for a person to retry.
REPLY_REQUEUE_AFTER_SECONDS = int(os.environ.get("REPLY_REQUEUE_AFTER_SECONDS", "120"))
REPLY_MAX_REQUEUES = int(os.environ.get("REPLY_MAX_REQUEUES", "3"))

# --- Labels ----------------------------------------------------------------------------------
# Administrators manage labels in admin (staff with the "add label" permission, and superusers,
# may also create them from the thread's label picker); with this on, every agent may create one
# there, for the conversation's account.
LABELS_AGENTS_CAN_CREATE = env_bool("LABELS_AGENTS_CAN_CREATE", False)
