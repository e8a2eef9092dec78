"""Provider API keys at rest: Fernet tokens under EDGE_ENCRYPTION_KEYS (first encrypts, all decrypt)."""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnreadable(Exception):
    """The stored secret was encrypted under a key that is no longer configured."""


def encrypt_secret(plaintext: str) -> str:
    return _fernet(tuple(settings.EDGE_ENCRYPTION_KEYS), settings.SECRET_KEY).encrypt(plaintext.encode()).decode()


def decrypt_secret(token: str) -> str:
    try:
        return _fernet(tuple(settings.EDGE_ENCRYPTION_KEYS), settings.SECRET_KEY).decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("no configured EDGE_ENCRYPTION_KEYS entry decrypts this secret") from None


def reencrypt_secret(token: str) -> str:
    """The same secret under the first (newest) key: step two of a key rotation."""
    try:
        return _fernet(tuple(settings.EDGE_ENCRYPTION_KEYS), settings.SECRET_KEY).rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("no configured EDGE_ENCRYPTION_KEYS entry decrypts this secret") from None


def dev_key_from(secret_key: str) -> str:
    """A Fernet key derived from SECRET_KEY, used only when EDGE_ENCRYPTION_KEYS is unset (checks.W001)."""
    return base64.urlsafe_b64encode(hashlib.sha256(f"edge-secrets:{secret_key}".encode()).digest()).decode()


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys or (dev_key_from(secret_key),)])
