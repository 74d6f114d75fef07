"""The device an account presents to Telegram (issue 14, item 3).

Telegram records, per session, the device model, system version, app version and languages the
client sent in initConnection, and shows them in the account's active sessions. A session that
comes back each time as another device is what an automated account looks like, so an account
gets one identity when it is brought in and keeps it: chosen by the caller, imported with the
session, or else picked here from realistic desktop sets, deterministically from the account's
id (the same account always gets the same set, without a random draw to store or replay).

Desktop sets only: Dripline connects with a desktop-style app (its own api_id), and a phone
model beside a desktop app id is a mismatch Telegram can see.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class DeviceIdentity:
    """What Telegram is told about the device on every connect of one account."""

    device_model: str
    system_version: str
    app_version: str
    lang_code: str = "en"
    system_lang_code: str = "en-US"


# (device_model, system_version) pairs as real machines report them.
DEVICES: tuple[tuple[str, str], ...] = (
    ("MacBook Pro", "macOS 14.6.1"),
    ("MacBook Air", "macOS 15.1"),
    ("iMac", "macOS 13.7"),
    ("Dell XPS 15 9530", "Windows 11"),
    ("Lenovo ThinkPad T14 Gen 4", "Windows 11"),
    ("HP EliteBook 840 G9", "Windows 10"),
    ("ASUS ZenBook 14 UX3402", "Windows 11"),
    ("Lenovo ThinkPad X1 Carbon Gen 11", "Ubuntu 24.04 LTS"),
)
# Desktop app versions in the form Telegram Desktop reports them.
APP_VERSIONS: tuple[str, ...] = ("5.8.3 x64", "5.9 x64", "5.10.3 x64", "5.11.1 x64")


def default_device(account_id: UUID) -> DeviceIdentity:
    """The identity an account gets when none is given: the same for the same id, always."""
    digest = hashlib.sha256(b"dripline.device:" + account_id.bytes).digest()
    device_model, system_version = DEVICES[int.from_bytes(digest[:4], "big") % len(DEVICES)]
    app_version = APP_VERSIONS[int.from_bytes(digest[4:8], "big") % len(APP_VERSIONS)]
    return DeviceIdentity(device_model, system_version, app_version)
