"""The device identity an account gets when none is given: realistic, and the same for the same
account every time."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from shared.domain.devices import APP_VERSIONS, DEVICES, DeviceIdentity, default_device


@pytest.mark.parametrize(
    ("account_id", "expected"),
    [
        # Pinned: a change of the table or of the pick would give existing ids other devices
        # (stored accounts keep theirs, but the default must not drift silently).
        (
            "00000000-0000-0000-0000-000000000001",
            DeviceIdentity("HP EliteBook 840 G9", "Windows 10", "5.8.3 x64", "en", "en-US"),
        ),
        (
            "6f1c1c1e-9a51-4c55-b4b8-6a8f0d6b1e00",
            DeviceIdentity("MacBook Air", "macOS 15.1", "5.11.1 x64", "en", "en-US"),
        ),
        (
            "ffffffff-ffff-ffff-ffff-ffffffffffff",
            DeviceIdentity("MacBook Pro", "macOS 14.6.1", "5.9 x64", "en", "en-US"),
        ),
    ],
)
def test_an_account_id_always_picks_the_same_device(
    account_id: str, expected: DeviceIdentity
) -> None:
    assert default_device(UUID(account_id)) == expected
    assert default_device(UUID(account_id)) == expected


def test_accounts_are_spread_over_every_realistic_set() -> None:
    picked = {default_device(uuid4()) for _ in range(400)}
    assert {(d.device_model, d.system_version) for d in picked} == set(DEVICES)
    assert {d.app_version for d in picked} == set(APP_VERSIONS)
