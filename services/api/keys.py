"""API keys: random, shown once, stored as a SHA-256 (keys are long and random, so a fast hash
is enough: there is nothing to brute-force)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

_PREFIX = "dl_"


@dataclass(frozen=True)
class NewKey:
    plaintext: str
    prefix: str
    hash: str


def generate() -> NewKey:
    plaintext = _PREFIX + secrets.token_urlsafe(32)
    return NewKey(plaintext, plaintext[:10], hash_key(plaintext))


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()
