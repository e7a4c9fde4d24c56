"""System checks for the accounts' secrets (`manage.py check`, `check --deploy`)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register

from accounts.crypto import invalid_keys

GENERATE_KEY = (
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)


@register(Tags.security, deploy=True)
def encryption_key_is_set(app_configs, **kwargs) -> list[Error]:
    if settings.FINDER_ENCRYPTION_KEYS:
        return []
    return [
        Error(
            "FINDER_ENCRYPTION_KEY is not set, so account tokens are encrypted with a development "
            "key kept in FINDER_DATA_DIR, next to the data it protects.",
            hint=f"Generate a key with `{GENERATE_KEY}`, keep it outside the database and its "
            "backups, and set FINDER_ENCRYPTION_KEY to it in every process (web, worker, beat).",
            id="accounts.E001",
        )
    ]


@register(Tags.security)
def encryption_keys_are_fernet_keys(app_configs, **kwargs) -> list[Error]:
    return [
        Error(
            f"FINDER_ENCRYPTION_KEY: key number {position} is not a Fernet key.",
            hint=f"A Fernet key is 32 url-safe base64-encoded bytes: `{GENERATE_KEY}`.",
            id="accounts.E002",
        )
        for position in invalid_keys(settings.FINDER_ENCRYPTION_KEYS)
    ]
