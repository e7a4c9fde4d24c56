"""Test settings: the app's own, made fast and deterministic."""

import os

from cryptography.fernet import Fernet

# A fresh key per run, in the environment so that the processes tests start (manage.py, worker,
# demo) decrypt what the test process encrypted.
os.environ.setdefault("FINDER_ENCRYPTION_KEY", Fernet.generate_key().decode())

from inbox.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Static files come straight from static/ through the finders: no collectstatic before tests.
WHITENOISE_USE_FINDERS = True
STATIC_ROOT = None
# The client's retries back off for real; keep them few so fault tests stay quick.
VIDEOSAPI_RETRIES = 2
VIDEOSAPI_READ_TIMEOUT = 5
LANGUAGE_CODE = "en"
# Tasks queued with delay_on_commit run inline when a test executes its on-commit callbacks;
# tests/test_worker.py starts a real worker for the queue itself.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
