"""Telegram session strings at rest: a session string is full access to its account
(TELEGRAM.md), so it is stored encrypted (Fernet: AES-128-CBC with an HMAC) and never logged."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken


class SessionKeyError(ValueError):
    """The stored session cannot be opened with this key (another key, or tampered)."""


class SessionCipher:
    def __init__(self, key: str) -> None:
        self._fernet = Fernet(key.encode())

    @staticmethod
    def new_key() -> str:
        return Fernet.generate_key().decode()

    def seal(self, session: str) -> str:
        return self._fernet.encrypt(session.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise SessionKeyError(
                "the stored session cannot be decrypted with DRIPLINE_SESSION_KEY"
            ) from exc
