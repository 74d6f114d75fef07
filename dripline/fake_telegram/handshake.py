"""The server side of MTProto's auth-key exchange (req_pq_multi, req_DH_params,
set_client_DH_params), with a test RSA key that Telethon is told to trust.

Why the real exchange: a login starts from an empty session, so Telethon creates its auth key
with the server before anything else (`telethon.network.authenticator`). The steps follow
https://core.telegram.org/mtproto/auth_key with the RSA padding Telethon 1.x uses (sha1(data) +
data + random, raw RSA), and the auth key is the big-endian bytes of g^ab without leading zeros,
as Telethon computes it, so both sides hold the same bytes.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa as crypto_rsa
from telethon.crypto import AES, AuthKey, rsa
from telethon.extensions import BinaryReader
from telethon.helpers import generate_key_data_from_nonce
from telethon.tl import functions, types

# Telegram's 2048-bit safe prime (also the one Telethon's SRP code knows, so it skips a slow
# primality check for it); g = 3 is a generator Telegram uses with it.
DH_PRIME = int(
    "C71CAEB9C6B1C9048E6C522F70F13F73980D40238E3E21C14934D037563D930F48198A0AA7C14058229493D2"
    "2530F4DBFA336F6E0AC925139543AED44CCE7C3720FD51F69458705AC68CD4FE6B6B13ABDC9746512969328454"
    "F18FAF8C595F642477FE96BB2A941D5BCD1D4AC8CC49880708FA9B378E3C4F3A9060BEE67CF9A4A4A695811051"
    "907E162753B56B0F6B410DBA74D8A84B2A14B3144E0EF1284754FD17ED950D5965B4B9DD46582DB1178D169C6B"
    "C465B0D6FF9CA3928FEF5B9AE4E418FC15E83EBEA0F87FA9FF5EED70050DED2849F47BF959D956850CE929851F"
    "0D8115F635B105EE2E4E15D04B2454BF6F4FADF034B10403119CD8E3B92FCC5B",
    16,
)
DH_G = 3
# pq as in Telegram's documented example: two primes below 2^32 that Telethon factorises.
_P, _Q = 1229739323, 1402015859
_SAFETY = 2 ** (2048 - 64)


class HandshakeError(Exception):
    """The client broke the exchange (a wrong nonce, hash or fingerprint)."""


@dataclass(frozen=True)
class FakeRsaKey:
    """The server's RSA key pair; `public_pem` is what a client registers with Telethon."""

    n: int
    e: int
    d: int
    public_pem: str

    @property
    def fingerprint(self) -> int:
        return int(rsa._compute_fingerprint(rsa.rsa.PublicKey(self.n, self.e)))

    def decrypt(self, block: bytes) -> bytes:
        return pow(int.from_bytes(block, "big"), self.d, self.n).to_bytes(255, "big")


@cache
def fake_rsa_key() -> FakeRsaKey:
    """One key per process, registered with Telethon on first use (the registry is global)."""
    return _key_of(crypto_rsa.generate_private_key(public_exponent=65537, key_size=2048))


def new_private_pem() -> str:
    """A new private key (PKCS#8 PEM) for `rsa_key_from_pem`, to keep one key across runs."""
    private = crypto_rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def rsa_key_from_pem(private_pem: str) -> FakeRsaKey:
    """The key pair of a private key `new_private_pem` made, registered with Telethon."""
    private = serialization.load_pem_private_key(private_pem.encode(), password=None)
    if not isinstance(private, crypto_rsa.RSAPrivateKey):
        raise ValueError("the fake's key file holds no RSA private key")
    return _key_of(private)


def _key_of(private: crypto_rsa.RSAPrivateKey) -> FakeRsaKey:
    numbers = private.private_numbers()
    pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
        .decode()
    )
    key = FakeRsaKey(numbers.public_numbers.n, numbers.public_numbers.e, numbers.d, pem)
    trust(pem)
    return key


def trust(public_pem: str) -> None:
    """Tell this process's Telethon to accept a server with that key (as Telegram's own)."""
    rsa.add_key(public_pem, old=False)


class Handshake:
    """The exchange on one connection; `answer` takes each plain request in turn."""

    def __init__(self, key: FakeRsaKey) -> None:
        self._rsa = key
        self._nonce: int | None = None
        self._server_nonce = int.from_bytes(os.urandom(16), "little", signed=True)
        self._new_nonce: int | None = None
        self._a = 0

    def answer(self, request: Any) -> tuple[Any, AuthKey | None]:
        """The answer to one request, and the new auth key once the exchange is done."""
        if isinstance(request, functions.ReqPqMultiRequest | functions.ReqPqRequest):
            self._nonce = request.nonce
            pq = rsa.get_byte_array(_P * _Q)
            return types.ResPQ(
                nonce=request.nonce,
                server_nonce=self._server_nonce,
                pq=pq,
                server_public_key_fingerprints=[self._rsa.fingerprint],
            ), None
        if isinstance(request, functions.ReqDHParamsRequest):
            return self._dh_params(request), None
        if isinstance(request, functions.SetClientDHParamsRequest):
            return self._client_dh_params(request)
        raise HandshakeError(f"{type(request).__name__} is not part of the auth-key exchange")

    def _check_nonces(self, request: Any) -> None:
        if self._nonce is None or request.nonce != self._nonce:
            raise HandshakeError("nonce does not match req_pq_multi")
        if request.server_nonce != self._server_nonce:
            raise HandshakeError("server_nonce does not match")

    def _dh_params(self, request: Any) -> Any:
        self._check_nonces(request)
        if request.public_key_fingerprint != self._rsa.fingerprint:
            raise HandshakeError(f"unknown RSA fingerprint {request.public_key_fingerprint}")
        plain = self._rsa.decrypt(request.encrypted_data)
        digest, reader = plain[:20], BinaryReader(plain[20:])
        inner = reader.tgread_object()
        if not isinstance(inner, types.PQInnerData):
            raise HandshakeError(f"encrypted_data holds {type(inner).__name__}")
        if hashlib.sha1(bytes(inner)).digest() != digest:
            raise HandshakeError("p_q_inner_data hash does not match")
        if (inner.nonce, inner.server_nonce) != (self._nonce, self._server_nonce):
            raise HandshakeError("p_q_inner_data nonces do not match")
        self._new_nonce = inner.new_nonce
        while True:
            self._a = secrets.randbits(2048)
            g_a = pow(DH_G, self._a, DH_PRIME)
            if _SAFETY <= g_a <= DH_PRIME - _SAFETY:
                break
        answer = bytes(
            types.ServerDHInnerData(
                nonce=self._nonce,
                server_nonce=self._server_nonce,
                g=DH_G,
                dh_prime=rsa.get_byte_array(DH_PRIME),
                g_a=rsa.get_byte_array(g_a),
                server_time=int(time.time()),
            )
        )
        with_hash = hashlib.sha1(answer).digest() + answer
        with_hash += os.urandom(-len(with_hash) % 16)
        key, iv = generate_key_data_from_nonce(self._server_nonce, inner.new_nonce)
        return types.ServerDHParamsOk(
            nonce=self._nonce,
            server_nonce=self._server_nonce,
            encrypted_answer=AES.encrypt_ige(with_hash, key, iv),
        )

    def _client_dh_params(self, request: Any) -> tuple[Any, AuthKey]:
        self._check_nonces(request)
        if self._new_nonce is None:
            raise HandshakeError("set_client_DH_params before req_DH_params")
        key, iv = generate_key_data_from_nonce(self._server_nonce, self._new_nonce)
        plain = AES.decrypt_ige(request.encrypted_data, key, iv)
        reader = BinaryReader(plain[20:])
        inner = reader.tgread_object()
        if not isinstance(inner, types.ClientDHInnerData):
            raise HandshakeError(f"encrypted_data holds {type(inner).__name__}")
        if hashlib.sha1(bytes(inner)).digest() != plain[:20]:
            raise HandshakeError("client_DH_inner_data hash does not match")
        g_b = int.from_bytes(inner.g_b, "big")
        if not _SAFETY <= g_b <= DH_PRIME - _SAFETY:
            raise HandshakeError("g_b is outside the safe range")
        auth_key = AuthKey(rsa.get_byte_array(pow(g_b, self._a, DH_PRIME)))
        return types.DhGenOk(
            nonce=self._nonce,
            server_nonce=self._server_nonce,
            new_nonce_hash1=auth_key.calc_new_nonce_hash(self._new_nonce, 1),
        ), auth_key
