"""The server side of Telegram's 2FA password check (SRP-6a, https://core.telegram.org/api/srp).

The fake keeps v = g^x mod p for an account's password (x is Telegram's PH2, computed with
Telethon's own `compute_hash`), hands out B = k*v + g^b with account.getPassword, and checks the
client's M1 for auth.checkPassword, so Telethon's `compute_check` (what `sign_in(password=)` and
our login use) is verified by the maths, not by comparing passwords.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass

from telethon import password as pw
from telethon.tl import types

from dripline.fake_telegram.handshake import DH_G, DH_PRIME

_P_BYTES = DH_PRIME.to_bytes(256, "big")


@dataclass(frozen=True)
class Verifier:
    """What the server stores for a password: its salts and v (never the password)."""

    salt1: bytes
    salt2: bytes
    v: int

    @property
    def algo(self) -> types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow:
        return _algo(self.salt1, self.salt2)

    @classmethod
    def for_password(cls, password: str) -> Verifier:
        salt1, salt2 = os.urandom(40), os.urandom(16)
        x = int.from_bytes(pw.compute_hash(_algo(salt1, salt2), password), "big")
        return cls(salt1, salt2, pow(DH_G, x, DH_PRIME))


@dataclass(frozen=True)
class Challenge:
    """One account.getPassword answer's secret half; auth.checkPassword must name its srp_id."""

    srp_id: int
    b: int
    srp_b: bytes  # B, 256 bytes big-endian


def _algo(
    salt1: bytes, salt2: bytes
) -> types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow:
    return types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
        salt1=salt1, salt2=salt2, g=DH_G, p=_P_BYTES
    )


def _k() -> int:
    return int.from_bytes(pw.sha256(_P_BYTES, pw.big_num_for_hash(DH_G)), "big")


def challenge(verifier: Verifier) -> Challenge:
    while True:
        b = secrets.randbits(2048)
        g_b = pow(DH_G, b, DH_PRIME)
        srp_b = (_k() * verifier.v + g_b) % DH_PRIME
        # The client refuses a B or g^b outside these bounds (telethon.password).
        if pw.is_good_mod_exp_first(g_b, DH_PRIME) and pw.is_good_large(srp_b, DH_PRIME):
            return Challenge(secrets.randbits(63), b, pw.big_num_for_hash(srp_b))


def verify(verifier: Verifier, sent: Challenge, a_bytes: bytes, m1: bytes) -> bool:
    """Whether M1 proves the client knows the password behind `verifier`."""
    a = int.from_bytes(a_bytes, "big")
    if not 0 < a < DH_PRIME:
        return False
    a_for_hash = pw.big_num_for_hash(a)
    u = int.from_bytes(pw.sha256(a_for_hash, sent.srp_b), "big")
    s = pow(a * pow(verifier.v, u, DH_PRIME) % DH_PRIME, sent.b, DH_PRIME)
    k = pw.sha256(pw.big_num_for_hash(s))
    expected = pw.sha256(
        pw.xor(pw.sha256(_P_BYTES), pw.sha256(pw.big_num_for_hash(DH_G))),
        pw.sha256(verifier.salt1),
        pw.sha256(verifier.salt2),
        a_for_hash,
        sent.srp_b,
        k,
    )
    return hmac.compare_digest(expected, m1)
