"""Secrets at rest (access and refresh tokens): Fernet with key rotation.

`LUMI_ENCRYPTION_KEYS` holds several keys; the first encrypts, every one decrypts, so an
operator rotates by prepending a new key and re-encrypting at leisure (`rotate`).
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class DecryptionError(Exception):
    """A stored secret could not be decrypted with any configured key."""


class SecretBox:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one key is required")
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise DecryptionError("stored secret cannot be decrypted with the configured keys") from None

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt under the first (current) key."""
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken:
            raise DecryptionError("stored secret cannot be decrypted with the configured keys") from None
