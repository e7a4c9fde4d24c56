"""Secrets at rest: account tokens are stored as Fernet tokens (AES-128-CBC with an HMAC-SHA256),
so a copy of the database alone (a dump, a backup, a stolen disk) reveals none of them.

Keys come from `FINDER_ENCRYPTION_KEY`: comma-separated Fernet keys, newest first. New values are
encrypted under the newest; every listed key can decrypt (MultiFernet). To rotate: put a new key
first and keep the old ones after it, run `manage.py rotate_encryption_key`, then drop the old.

Without `FINDER_ENCRYPTION_KEY` (a fresh clone, local development) a random key is generated once
into `FINDER_DATA_DIR/dev-encryption.key` and used from there by every process of the checkout.
That is for development only: the key sits on the same disk as the SQLite file it protects, and
`manage.py check --deploy` reports a missing FINDER_ENCRYPTION_KEY as an error.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.db import models
from django.db.models.query_utils import DeferredAttribute

DEV_KEY_FILENAME = "dev-encryption.key"


class TokenDecryptionError(ImproperlyConfigured):
    """A stored secret cannot be decrypted with any configured key. Names the row, never the
    secret."""


def configured_keys() -> list[str]:
    """The keys in use, newest first: FINDER_ENCRYPTION_KEY's, else the development key."""
    return list(settings.FINDER_ENCRYPTION_KEYS) or [development_key(Path(settings.DATA_DIR))]


def development_key(data_dir: Path) -> str:
    """The checkout's development key, generated on first use. Several processes (web, worker,
    beat) may start at once: the key is written to a temporary file and linked into place, so
    exactly one key wins and nobody reads a half-written file."""
    path = data_dir / DEV_KEY_FILENAME
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        temporary = data_dir / f".{DEV_KEY_FILENAME}.{os.getpid()}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(Fernet.generate_key().decode())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process was first; use its key
        finally:
            temporary.unlink()
    return path.read_text().strip()


def invalid_keys(keys: list[str]) -> list[int]:
    """Positions (1-based) of the keys that are not Fernet keys."""
    bad = []
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            bad.append(position)
    return bad


@functools.lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if positions := invalid_keys(list(keys)):
        raise ImproperlyConfigured(
            f"FINDER_ENCRYPTION_KEY: key number {positions[0]} is not a Fernet key (32 url-safe "
            'base64-encoded bytes; make one with `python -c "from cryptography.fernet import '
            'Fernet; print(Fernet.generate_key().decode())"`)'
        )
    return MultiFernet([Fernet(key) for key in keys])


def encrypt(plaintext: str) -> str:
    return _fernet(tuple(configured_keys())).encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    """Raises cryptography's InvalidToken when no configured key encrypted `ciphertext`."""
    return _fernet(tuple(configured_keys())).decrypt(ciphertext.encode()).decode()


def is_under_newest_key(ciphertext: str) -> bool:
    try:
        Fernet(configured_keys()[0]).decrypt(ciphertext.encode())
    except InvalidToken:
        return False
    return True


def reencrypt(ciphertext: str) -> str:
    """The same secret encrypted under the newest key."""
    return _fernet(tuple(configured_keys())).rotate(ciphertext.encode()).decode()


class Ciphertext(str):
    """A value as it is stored: encrypted, not decrypted yet."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Ciphertext(…)"


def _is_ciphertext(value: str) -> bool:
    try:
        decrypt(value)
    except (InvalidToken, UnicodeError):
        return False
    return True


class _DecryptingAttribute(DeferredAttribute):
    """Reads as the plaintext; decrypts on every read rather than at load, so listing rows never
    needs the key and a failure can name the row it happened on. A data descriptor (it has
    __set__), so reads always come here, even once the value is in the instance's __dict__."""

    def __get__(self, instance, cls=None):
        if instance is None:
            return self
        value = super().__get__(instance, cls)
        if not isinstance(value, Ciphertext):
            return value
        try:
            return decrypt(value)
        except InvalidToken:
            field = self.field
            raise TokenDecryptionError(
                f"Cannot decrypt the {field.verbose_name} of {field.model._meta.verbose_name} "
                f"{instance}: none of the keys in FINDER_ENCRYPTION_KEY encrypted it. Was the key "
                "replaced without keeping the old one after it?"
            ) from None

    def __set__(self, instance, value) -> None:
        instance.__dict__[self.field.attname] = value


class EncryptedTextField(models.TextField):
    """A text column that holds the value encrypted (see the module docstring). The model
    attribute reads and writes plaintext; the database, forms' initial data and serialized
    fixtures see only the ciphertext. It cannot be filtered on: encryption is randomised."""

    descriptor_class = _DecryptingAttribute

    def from_db_value(self, value, expression, connection):
        return None if value is None else Ciphertext(value)

    def to_python(self, value):
        value = super().to_python(value)
        # A fixture (dumpdata) carries the ciphertext; loading it must not encrypt it again.
        if isinstance(value, str) and not isinstance(value, Ciphertext) and _is_ciphertext(value):
            return Ciphertext(value)
        return value

    def pre_save(self, model_instance, add):
        # The stored form as it is: saving a row neither needs the key nor re-encrypts.
        return model_instance.__dict__.get(self.attname)

    def get_prep_value(self, value):
        # Field's, not TextField's: that one would run to_python's trial decryption on every save.
        value = models.Field.get_prep_value(self, value)
        if value is None or isinstance(value, Ciphertext):
            return value
        return encrypt(str(value))

    def value_from_object(self, obj):
        value = obj.__dict__.get(self.attname)
        if value is None or isinstance(value, Ciphertext):
            return value
        return Ciphertext(encrypt(value))

    def get_lookup(self, lookup_name):
        if lookup_name != "isnull":
            raise FieldError(
                f"{self.name} is encrypted with a random nonce and cannot be compared "
                f"({lookup_name})"
            )
        return super().get_lookup(lookup_name)
