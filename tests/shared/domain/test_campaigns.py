"""The campaign state machine (spec 001 "Campaign Actions", spec 000 status rules), the edit
rules and the display status of spec 004, one row per case."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.accounts import AccountHealth
from shared.domain.campaigns import (
    DISABLED_BY_USER,
    STOPPED_BY_USER,
    CampaignState,
    CampaignStatus,
    Change,
    DisplayStatus,
    ExecutionEffect,
    FieldGroup,
    LaunchReadiness,
    LaunchType,
    Missed,
    Refusal,
    Unmet,
    add_contacts,
    after_run,
    copy_name,
    copy_unfinished,
    delete,
    disable,
    display_status,
    duplicate,
    edit_refusal,
    enable,
    failure_reason,
    fire,
    launch,
    launches_on_save,
    pause,
    restore,
    start_carrier,
    stop,
)

S = CampaignStatus
L = LaunchType
E = ExecutionEffect
READY = LaunchReadiness(account=AccountHealth.ACTIVE, contacts=3, flow_problems=0)
NOT_READY_AT_ALL = LaunchReadiness(account=None, contacts=0, flow_problems=1)


def state(
    status: S, enabled: bool = True, launch_type: L = L.MANUAL, deleted: bool = False
) -> CampaignState:
    return CampaignState(status, enabled, launch_type, deleted)


LAUNCH = [
    # state, readiness, reset -> status and execution effect, or refusal code
    (state(S.DRAFT), READY, False, (S.ACTIVE, E.RESUME)),
    (state(S.DRAFT, launch_type=L.NOW), READY, False, (S.ACTIVE, E.RESUME)),
    (state(S.DRAFT, launch_type=L.SCHEDULE), READY, False, (S.SCHEDULED, E.RESUME)),
    (state(S.DRAFT, launch_type=L.RECURRING), READY, False, (S.SCHEDULED, E.RESUME)),
    (state(S.PAUSED), READY, False, (S.ACTIVE, E.RESUME)),
    (state(S.PAUSED, launch_type=L.SCHEDULE), READY, False, (S.ACTIVE, E.RESUME)),
    (state(S.PAUSED), READY, True, (S.ACTIVE, E.RESUME_AND_RESET)),
    (state(S.ACTIVE), READY, False, "invalid_status"),
    # Run now (issue 16): a scheduled campaign starts at once; a recurring one's finished
    # executions start the flow again, as at an occurrence.
    (state(S.SCHEDULED, launch_type=L.SCHEDULE), READY, False, (S.ACTIVE, E.RESUME)),
    (state(S.SCHEDULED, launch_type=L.RECURRING), READY, False, (S.ACTIVE, E.RESTART)),
    (
        state(S.SCHEDULED, launch_type=L.SCHEDULE),
        NOT_READY_AT_ALL,
        False,
        "launch_requirements_unmet",
    ),
    (state(S.COMPLETED), READY, False, "invalid_status"),
    (state(S.CANCELLED), READY, False, "invalid_status"),
    # A failed campaign is launched again once its cause is fixed (issue 16): active at once,
    # its interrupted (paused) executions continue where they stopped; requirements re-checked.
    (state(S.FAILED), READY, False, (S.ACTIVE, E.RESUME)),
    (state(S.FAILED, launch_type=L.SCHEDULE), READY, False, (S.ACTIVE, E.RESUME)),
    (state(S.FAILED, launch_type=L.RECURRING), READY, False, (S.ACTIVE, E.RESUME)),
    (
        state(S.FAILED),
        LaunchReadiness(AccountHealth.BANNED, 3, 0),
        False,
        "launch_requirements_unmet",
    ),
    (state(S.FAILED), LaunchReadiness(None, 3, 0), False, "launch_requirements_unmet"),
    (state(S.FAILED, deleted=True), READY, False, "campaign_deleted"),
    (state(S.DRAFT, deleted=True), READY, False, "campaign_deleted"),
    (state(S.DRAFT, enabled=False), READY, False, "launch_requirements_unmet"),
    (state(S.DRAFT), LaunchReadiness(None, 3, 0), False, "launch_requirements_unmet"),
    (
        state(S.DRAFT),
        LaunchReadiness(AccountHealth.BANNED, 3, 0),
        False,
        "launch_requirements_unmet",
    ),
    (state(S.DRAFT), LaunchReadiness(AccountHealth.COOLDOWN, 3, 0), False, (S.ACTIVE, E.RESUME)),
    (state(S.DRAFT), LaunchReadiness(AccountHealth.WARMING, 3, 0), False, (S.ACTIVE, E.RESUME)),
    (
        state(S.DRAFT),
        LaunchReadiness(AccountHealth.ACTIVE, 0, 0),
        False,
        "launch_requirements_unmet",
    ),
    (
        state(S.DRAFT),
        LaunchReadiness(AccountHealth.ACTIVE, 1, 2),
        False,
        "launch_requirements_unmet",
    ),
]


@pytest.mark.parametrize(("current", "readiness", "reset", "outcome"), LAUNCH)
def test_launch(
    current: CampaignState, readiness: LaunchReadiness, reset: bool, outcome: object
) -> None:
    result = launch(current, readiness, reset_completed=reset)
    if isinstance(outcome, str):
        assert isinstance(result, Refusal)
        assert result.code == outcome
    else:
        assert isinstance(result, Change)
        assert (result.status, result.executions) == outcome
        assert result.enabled
        assert not result.deleted


@pytest.mark.parametrize(
    ("readiness", "enabled", "codes"),
    [
        (
            LaunchReadiness(None, 0, 1),
            False,
            ["campaign_disabled", "account_missing", "no_contacts", "flow_invalid"],
        ),
        (
            LaunchReadiness(AccountHealth.AUTH_LOST, 0, 0),
            True,
            ["account_unavailable", "no_contacts"],
        ),
        (LaunchReadiness(AccountHealth.LIMITED, 5, 0), True, ["account_unavailable"]),
        (LaunchReadiness(AccountHealth.DISCONNECTED, 5, 0), True, ["account_unavailable"]),
    ],
)
def test_every_unmet_launch_requirement_is_reported_at_once(
    readiness: LaunchReadiness, enabled: bool, codes: list[str]
) -> None:
    result = launch(state(S.DRAFT, enabled=enabled), readiness)
    assert isinstance(result, Refusal)
    assert [u.code for u in result.unmet] == codes


Command = Callable[[CampaignState], Change | Refusal]
COMMANDS = [
    # command, state -> (status, enabled, deleted, effect, reason) or refusal code
    (pause, state(S.ACTIVE), (S.PAUSED, True, False, E.PAUSE, None)),
    (pause, state(S.PAUSED), "invalid_status"),
    (pause, state(S.DRAFT), "invalid_status"),
    (pause, state(S.SCHEDULED), "invalid_status"),
    (pause, state(S.ACTIVE, deleted=True), "campaign_deleted"),
    (stop, state(S.ACTIVE), (S.CANCELLED, True, False, E.CANCEL, STOPPED_BY_USER)),
    (stop, state(S.PAUSED), (S.CANCELLED, True, False, E.CANCEL, STOPPED_BY_USER)),
    (stop, state(S.DRAFT), "invalid_status"),
    # Spec 004: Waiting "can be stopped" (issue 16); its schedule is cleared by the scheduler.
    (stop, state(S.SCHEDULED), (S.CANCELLED, True, False, E.CANCEL, STOPPED_BY_USER)),
    (
        stop,
        state(S.SCHEDULED, launch_type=L.RECURRING),
        (S.CANCELLED, True, False, E.CANCEL, STOPPED_BY_USER),
    ),
    (
        stop,
        state(S.SCHEDULED, enabled=False),
        (S.CANCELLED, False, False, E.CANCEL, STOPPED_BY_USER),
    ),
    # A failed campaign may be stopped too: its interrupted executions end (issue 16).
    (stop, state(S.FAILED), (S.CANCELLED, True, False, E.CANCEL, STOPPED_BY_USER)),
    (stop, state(S.COMPLETED), "invalid_status"),
    (stop, state(S.CANCELLED), "invalid_status"),
    (enable, state(S.DRAFT, enabled=False), (S.DRAFT, True, False, E.NONE, None)),
    (enable, state(S.ACTIVE, enabled=False), (S.ACTIVE, True, False, E.NONE, None)),
    (enable, state(S.CANCELLED, enabled=True), (S.CANCELLED, True, False, E.NONE, None)),
    (enable, state(S.DRAFT, deleted=True), "campaign_deleted"),
    (disable, state(S.ACTIVE), (S.ACTIVE, False, False, E.CANCEL, DISABLED_BY_USER)),
    (disable, state(S.PAUSED), (S.PAUSED, False, False, E.CANCEL, DISABLED_BY_USER)),
    (disable, state(S.COMPLETED), (S.COMPLETED, False, False, E.CANCEL, DISABLED_BY_USER)),
    (disable, state(S.DRAFT, deleted=True), "campaign_deleted"),
    (delete, state(S.DRAFT), (S.DRAFT, True, True, E.NONE, None)),
    (delete, state(S.PAUSED), (S.PAUSED, True, True, E.NONE, None)),
    (delete, state(S.SCHEDULED), (S.SCHEDULED, True, True, E.NONE, None)),
    (delete, state(S.COMPLETED), (S.COMPLETED, True, True, E.NONE, None)),
    (delete, state(S.CANCELLED), (S.CANCELLED, True, True, E.NONE, None)),
    (delete, state(S.FAILED), (S.FAILED, True, True, E.NONE, None)),
    (delete, state(S.ACTIVE), "campaign_active"),
    (delete, state(S.DRAFT, deleted=True), "campaign_deleted"),
    (restore, state(S.PAUSED, deleted=True), (S.PAUSED, True, False, E.NONE, None)),
    (restore, state(S.PAUSED), "campaign_not_deleted"),
    (add_contacts, state(S.COMPLETED), (S.ACTIVE, True, False, E.NONE, None)),
    (add_contacts, state(S.COMPLETED, enabled=False), (S.COMPLETED, False, False, E.NONE, None)),
    (add_contacts, state(S.ACTIVE), (S.ACTIVE, True, False, E.NONE, None)),
    (add_contacts, state(S.DRAFT), (S.DRAFT, True, False, E.NONE, None)),
    (add_contacts, state(S.DRAFT, deleted=True), "campaign_deleted"),
    (start_carrier, state(S.DRAFT), (S.ACTIVE, True, False, E.NONE, None)),
    (start_carrier, state(S.DRAFT, enabled=False), (S.ACTIVE, False, False, E.NONE, None)),
    (start_carrier, state(S.ACTIVE), "invalid_status"),
    (start_carrier, state(S.PAUSED), "invalid_status"),
    (start_carrier, state(S.COMPLETED), "invalid_status"),
    (start_carrier, state(S.DRAFT, deleted=True), "campaign_deleted"),
]


@pytest.mark.parametrize(("command", "current", "outcome"), COMMANDS)
def test_command(command: Command, current: CampaignState, outcome: object) -> None:
    result = command(current)
    if isinstance(outcome, str):
        assert isinstance(result, Refusal)
        assert result.code == outcome
    else:
        assert isinstance(result, Change)
        assert (
            result.status,
            result.enabled,
            result.deleted,
            result.executions,
            result.reason,
        ) == outcome


COPIES_OF_UNFINISHED = [
    # state -> refusal code, or None: "Run again as a copy" only from a stopped campaign
    (state(S.CANCELLED), None),
    (state(S.CANCELLED, enabled=False), None),
    (state(S.CANCELLED, deleted=True), "campaign_deleted"),
    (state(S.FAILED), "invalid_status"),  # launched again instead
    (state(S.PAUSED), "invalid_status"),
    (state(S.ACTIVE), "invalid_status"),
    (state(S.COMPLETED), "invalid_status"),
    (state(S.DRAFT), "invalid_status"),
]


@pytest.mark.parametrize(("current", "code"), COPIES_OF_UNFINISHED)
def test_copy_unfinished_only_from_a_stopped_campaign(
    current: CampaignState, code: str | None
) -> None:
    refusal = copy_unfinished(current)
    assert (refusal.code if refusal is not None else None) == code


def test_duplicate_refuses_only_deleted_campaigns() -> None:
    assert duplicate(state(S.ACTIVE)) is None
    refusal = duplicate(state(S.DRAFT, deleted=True))
    assert refusal is not None
    assert refusal.code == "campaign_deleted"


@pytest.mark.parametrize(
    ("name", "copy"),
    [("Spring", "Spring (Copy)"), ("x" * 200, "x" * 193 + " (Copy)")],
)
def test_copy_name(name: str, copy: str) -> None:
    assert copy_name(name) == copy
    assert len(copy_name(name)) <= 200


@pytest.mark.parametrize(
    ("launch_type", "status"),
    [
        (L.RECURRING, S.SCHEDULED),
        (L.SCHEDULE, S.COMPLETED),
        (L.NOW, S.COMPLETED),
        (L.MANUAL, S.COMPLETED),
    ],
)
def test_after_run_recurring_campaigns_return_to_scheduled(launch_type: L, status: S) -> None:
    assert after_run(launch_type) is status


M, AB, FL = FieldGroup.METADATA, FieldGroup.AB_TEST, FieldGroup.FLOW
EDITS = [
    # status, field groups -> refusal code or None (spec 001 "Edit Campaign", L145-163)
    (S.DRAFT, {M, AB, FL}, None),
    (S.PAUSED, {M, AB, FL}, None),
    (S.SCHEDULED, {M, AB, FL}, None),
    (S.ACTIVE, {M}, None),
    (S.ACTIVE, {FL}, "flow_locked"),
    (S.ACTIVE, {AB}, "flow_locked"),
    (S.FAILED, {M, AB}, None),
    (S.FAILED, {FL}, None),  # edited as a paused campaign, to fix its cause (issue 16)
    (S.COMPLETED, {M}, "campaign_read_only"),
    (S.CANCELLED, {M}, "campaign_read_only"),
    (S.COMPLETED, {FL}, "campaign_read_only"),
]


@pytest.mark.parametrize(("status", "groups", "code"), EDITS)
def test_edit_rules(status: S, groups: set[FieldGroup], code: str | None) -> None:
    refusal = edit_refusal(state(status), groups)
    assert (refusal.code if refusal else None) == code


def test_a_deleted_campaign_cannot_be_edited() -> None:
    refusal = edit_refusal(state(S.DRAFT, deleted=True), {M})
    assert refusal is not None
    assert refusal.code == "campaign_deleted"


NOT_READY = LaunchReadiness(account=None, contacts=0, flow_problems=1)
DISPLAY = [
    # docs/architecture.md's mapping of the spec 004 labels
    (state(S.DRAFT, launch_type=L.MANUAL), READY, DisplayStatus.READY),
    (state(S.DRAFT, launch_type=L.MANUAL), NOT_READY, DisplayStatus.DRAFT),
    # A "now" draft that its save could not launch waits for a person, as a manual one does.
    (state(S.DRAFT, launch_type=L.NOW), READY, DisplayStatus.READY),
    (state(S.DRAFT, launch_type=L.NOW), NOT_READY, DisplayStatus.DRAFT),
    (state(S.DRAFT, launch_type=L.SCHEDULE), READY, DisplayStatus.DRAFT),
    # A disabled scheduled campaign will not fire: not Waiting (issue 16).
    (state(S.SCHEDULED, enabled=False, launch_type=L.SCHEDULE), READY, DisplayStatus.STOPPED),
    (state(S.SCHEDULED, enabled=False, launch_type=L.RECURRING), READY, DisplayStatus.STOPPED),
    (state(S.DRAFT, enabled=False), READY, DisplayStatus.DRAFT),
    (state(S.ACTIVE), NOT_READY, DisplayStatus.RUNNING),
    (state(S.SCHEDULED, launch_type=L.SCHEDULE), READY, DisplayStatus.WAITING),
    (state(S.PAUSED), READY, DisplayStatus.STOPPED),
    (state(S.CANCELLED), READY, DisplayStatus.STOPPED),
    (state(S.COMPLETED), READY, DisplayStatus.DONE),
    (state(S.FAILED), READY, DisplayStatus.FAILED),
]


@pytest.mark.parametrize(("current", "readiness", "label"), DISPLAY)
def test_display_status(
    current: CampaignState, readiness: LaunchReadiness, label: DisplayStatus
) -> None:
    assert display_status(current, readiness) is label


DUE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BANNED = LaunchReadiness(account=AccountHealth.BANNED, contacts=0, flow_problems=0)
FIRINGS = [
    # state, readiness, now -> status and effect, "missed", or None (not fired)
    (state(S.SCHEDULED, launch_type=L.SCHEDULE), READY, DUE, (S.ACTIVE, E.RESUME)),
    (state(S.SCHEDULED, launch_type=L.RECURRING), READY, DUE, (S.ACTIVE, E.RESTART)),
    (
        state(S.SCHEDULED, launch_type=L.SCHEDULE),
        READY,
        DUE + timedelta(minutes=5),
        (S.ACTIVE, E.RESUME),
    ),
    (
        state(S.SCHEDULED, launch_type=L.SCHEDULE),
        READY,
        DUE + timedelta(minutes=5, seconds=1),
        "missed",
    ),
    (state(S.SCHEDULED, launch_type=L.RECURRING), READY, DUE + timedelta(hours=3), "missed"),
    # A missed run is missed whatever else is wrong: a person decides first.
    (state(S.SCHEDULED, launch_type=L.SCHEDULE), BANNED, DUE + timedelta(hours=3), "missed"),
    (state(S.SCHEDULED, launch_type=L.SCHEDULE), BANNED, DUE, (S.FAILED, E.NONE)),
    (state(S.SCHEDULED, launch_type=L.RECURRING), NOT_READY_AT_ALL, DUE, (S.FAILED, E.NONE)),
    (state(S.SCHEDULED, enabled=False, launch_type=L.SCHEDULE), READY, DUE, None),
    (state(S.SCHEDULED, deleted=True, launch_type=L.SCHEDULE), READY, DUE, None),
    (state(S.ACTIVE, launch_type=L.SCHEDULE), READY, DUE, None),
]


@pytest.mark.parametrize(("current", "readiness", "now", "outcome"), FIRINGS)
def test_fire(
    current: CampaignState, readiness: LaunchReadiness, now: datetime, outcome: object
) -> None:
    result = fire(current, readiness, due_at=DUE, now=now)
    if outcome is None:
        assert result is None
    elif outcome == "missed":
        assert result == Missed(DUE)
    else:
        assert isinstance(result, Change)
        assert (result.status, result.executions) == outcome
        assert (result.failure is None) == (result.status is not S.FAILED)


def test_a_campaign_failing_at_its_time_names_every_unmet_requirement() -> None:
    result = fire(state(S.SCHEDULED, launch_type=L.SCHEDULE), BANNED, due_at=DUE, now=DUE)
    assert isinstance(result, Change)
    assert result.failure == failure_reason(
        [
            Unmet(
                "account_unavailable", "the Telegram account is banned, not connected and healthy"
            ),
            Unmet("no_contacts", "the campaign has no contacts; add at least one"),
        ]
    )
    assert result.failure is not None
    assert "account_unavailable" in result.failure
    assert "no_contacts" in result.failure


SAVES = [
    (state(S.DRAFT, launch_type=L.NOW), READY, True),
    (state(S.DRAFT, launch_type=L.NOW), NOT_READY_AT_ALL, False),
    (state(S.DRAFT, launch_type=L.NOW, enabled=False), READY, False),
    (state(S.DRAFT, launch_type=L.NOW, deleted=True), READY, False),
    (state(S.DRAFT, launch_type=L.MANUAL), READY, False),
    (state(S.DRAFT, launch_type=L.SCHEDULE), READY, False),
    (state(S.PAUSED, launch_type=L.NOW), READY, False),  # a relaunch is a person's choice
    (state(S.ACTIVE, launch_type=L.NOW), READY, False),
]


@pytest.mark.parametrize(("current", "readiness", "launches"), SAVES)
def test_a_now_campaign_launches_when_saved_ready(
    current: CampaignState, readiness: LaunchReadiness, launches: bool
) -> None:
    assert launches_on_save(current, readiness) is launches
