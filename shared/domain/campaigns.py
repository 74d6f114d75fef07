"""The campaign state machine: which lifecycle command is allowed in which state, where it leads
and what it does to the executions; which fields may be edited in which status; the display
status of spec 004. Pure functions; the scheduler (the single writer of campaign status) applies
the commands and the API applies the edit rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from shared.domain.accounts import AccountHealth, can_launch_with


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


class LaunchType(StrEnum):
    NOW = "now"
    MANUAL = "manual"
    SCHEDULE = "schedule"
    RECURRING = "recurring"


class ExecutionEffect(StrEnum):
    """What a command does to the campaign's executions (the scheduler turns it into SQL)."""

    NONE = "none"
    RESUME = "resume"  # paused -> pending, next_execution_at = now where it has passed
    RESUME_AND_RESET = "resume_and_reset"  # and completed -> pending from the start
    PAUSE = "pause"  # unfinished -> paused, next_execution_at kept
    CANCEL = "cancel"  # unfinished -> cancelled, completed_at set, with a reason
    RESTART = "restart"  # a recurring run: paused resume, completed and failed start again


STOPPED_BY_USER = "Campaign stopped by user"  # spec 001, stop process
DISABLED_BY_USER = "Campaign disabled by user"


@dataclass(frozen=True)
class CampaignState:
    status: CampaignStatus
    enabled: bool
    launch_type: LaunchType
    deleted: bool = False


@dataclass(frozen=True)
class Change:
    status: CampaignStatus
    enabled: bool
    deleted: bool
    executions: ExecutionEffect = ExecutionEffect.NONE
    reason: str | None = None  # the error message written on cancelled executions
    failure: str | None = None  # the campaign's failure_reason, when it fails


@dataclass(frozen=True)
class Unmet:
    code: str
    detail: str


@dataclass(frozen=True)
class Refusal:
    code: str
    detail: str
    unmet: tuple[Unmet, ...] = field(default=())


@dataclass(frozen=True)
class LaunchReadiness:
    """What a launch needs besides the campaign's own state (spec 001, launch requirements)."""

    account: AccountHealth | None  # None: no account, or one that was deleted
    contacts: int
    flow_problems: int  # validation problems of the flow; an empty flow counts as one


# Spec 001, "Launch Campaign": status draft or paused; a scheduled campaign may be run now
# (spec 004: a run time that passed "with an option to edit it", docs/campaigns.md); and a
# failed one is launched again once its cause is fixed (issue 16: no dead ends).
LAUNCHABLE_FROM = frozenset(
    {CampaignStatus.DRAFT, CampaignStatus.PAUSED, CampaignStatus.SCHEDULED, CampaignStatus.FAILED}
)
PAUSABLE_FROM = frozenset({CampaignStatus.ACTIVE})
# Spec 004: Waiting "can be stopped", the later and more specific rule than spec 000's; a failed
# campaign too, so that its interrupted executions can be ended for good (issue 16).
STOPPABLE_FROM = frozenset(
    {CampaignStatus.ACTIVE, CampaignStatus.PAUSED, CampaignStatus.SCHEDULED, CampaignStatus.FAILED}
)
# A due run found later than this was missed (the scheduler was down): it waits for a person.
MISSED_RUN_GRACE = timedelta(minutes=5)
READ_ONLY = frozenset({CampaignStatus.COMPLETED, CampaignStatus.CANCELLED})


def _deleted(action: str) -> Refusal:
    return Refusal("campaign_deleted", f"a deleted campaign cannot be {action}; restore it first")


def _same(state: CampaignState, **changes: object) -> Change:
    values: dict[str, object] = {
        "status": state.status,
        "enabled": state.enabled,
        "deleted": state.deleted,
    }
    values.update(changes)
    return Change(**values)  # type: ignore[arg-type]


def launch_requirements(state: CampaignState, readiness: LaunchReadiness) -> tuple[Unmet, ...]:
    """Every unmet requirement at once, each with its own code."""
    unmet: list[Unmet] = []
    if not state.enabled:
        unmet.append(Unmet("campaign_disabled", "the campaign is disabled; enable it first"))
    if readiness.account is None:
        unmet.append(Unmet("account_missing", "the campaign has no Telegram account"))
    elif not can_launch_with(readiness.account):
        unmet.append(
            Unmet(
                "account_unavailable",
                f"the Telegram account is {readiness.account.value}, not connected and healthy",
            )
        )
    if readiness.contacts == 0:
        unmet.append(Unmet("no_contacts", "the campaign has no contacts; add at least one"))
    if readiness.flow_problems:
        unmet.append(Unmet("flow_invalid", "the flow is empty or invalid; fix it before launching"))
    return tuple(unmet)


def launch(
    state: CampaignState, readiness: LaunchReadiness, *, reset_completed: bool = False
) -> Change | Refusal:
    if state.deleted:
        return _deleted("launched")
    if state.status not in LAUNCHABLE_FROM:
        return Refusal(
            "invalid_status",
            "a campaign can be launched from draft, paused, scheduled or failed, not from "
            f"{state.status.value}",
        )
    unmet = launch_requirements(state, readiness)
    if unmet:
        detail = "; ".join(u.detail for u in unmet)
        return Refusal("launch_requirements_unmet", f"cannot launch: {detail}", unmet)
    effect = ExecutionEffect.RESUME_AND_RESET if reset_completed else ExecutionEffect.RESUME
    if state.status is CampaignStatus.SCHEDULED and state.launch_type is LaunchType.RECURRING:
        effect = ExecutionEffect.RESTART  # run now: the next occurrence, early
    # Spec 001: "Status changes to active (or scheduled if scheduled)"; relaunching a paused or
    # failed campaign resumes at once whatever its launch type (a failed campaign's interrupted
    # executions are paused ones: they continue where they stopped).
    waits = state.launch_type in (LaunchType.SCHEDULE, LaunchType.RECURRING)
    if waits and state.status is CampaignStatus.DRAFT:
        return _same(state, status=CampaignStatus.SCHEDULED, executions=effect)
    return _same(state, status=CampaignStatus.ACTIVE, executions=effect)


def pause(state: CampaignState) -> Change | Refusal:
    if state.deleted:
        return _deleted("paused")
    if state.status not in PAUSABLE_FROM:
        return Refusal(
            "invalid_status",
            f"only an active campaign can be paused, not a {state.status.value} one",
        )
    return _same(state, status=CampaignStatus.PAUSED, executions=ExecutionEffect.PAUSE)


def stop(state: CampaignState) -> Change | Refusal:
    if state.deleted:
        return _deleted("stopped")
    if state.status not in STOPPABLE_FROM:
        return Refusal(
            "invalid_status",
            "a campaign can be stopped when active, paused, scheduled or failed, not "
            f"{state.status.value}",
        )
    return _same(
        state,
        status=CampaignStatus.CANCELLED,
        executions=ExecutionEffect.CANCEL,
        reason=STOPPED_BY_USER,
    )


def enable(state: CampaignState) -> Change | Refusal:
    """Spec 001: sets enabled; previously cancelled executions stay cancelled; does not launch."""
    if state.deleted:
        return _deleted("enabled")
    return _same(state, enabled=True)


def disable(state: CampaignState) -> Change | Refusal:
    """Spec 001: any status; unfinished executions are cancelled at once; status unchanged."""
    if state.deleted:
        return _deleted("disabled")
    return _same(state, enabled=False, executions=ExecutionEffect.CANCEL, reason=DISABLED_BY_USER)


def delete(state: CampaignState) -> Change | Refusal:
    if state.deleted:
        return Refusal("campaign_deleted", "the campaign is already deleted")
    if state.status is CampaignStatus.ACTIVE:
        return Refusal("campaign_active", "an active campaign must be stopped before deletion")
    return _same(state, deleted=True)


def restore(state: CampaignState) -> Change | Refusal:
    if not state.deleted:
        return Refusal("campaign_not_deleted", "only a deleted campaign can be restored")
    return _same(state, deleted=False)


def add_contacts(state: CampaignState) -> Change | Refusal:
    """Spec 001: adding contacts works in any status; a completed campaign is reactivated."""
    if state.deleted:
        return _deleted("changed")
    if state.status is CampaignStatus.COMPLETED and state.enabled:
        return _same(state, status=CampaignStatus.ACTIVE)
    return _same(state)


def start_carrier(state: CampaignState) -> Change | Refusal:
    """A send-message bulk action's own campaign (hidden, created by the API as a manual draft)
    starts with the action's first batch. No launch requirements: the action checked its account
    and text when it was created, and its contacts arrive batch by batch after the start."""
    if state.deleted:
        return _deleted("started")
    if state.status is not CampaignStatus.DRAFT:
        return Refusal(
            "invalid_status",
            f"a bulk action's campaign starts from draft, not from {state.status.value}",
        )
    return _same(state, status=CampaignStatus.ACTIVE)


def remove_contacts(state: CampaignState) -> Change | Refusal:
    if state.deleted:
        return _deleted("changed")
    return _same(state)


def duplicate(state: CampaignState) -> Refusal | None:
    if state.deleted:
        return _deleted("duplicated")
    return None


def copy_unfinished(state: CampaignState) -> Refusal | None:
    """ "Run again as a copy" (issue 16): a stopped (cancelled) campaign stays final (spec 001);
    a draft copy takes its contacts that never finished, so nobody who finished is messaged
    again. Only from cancelled: a failed or paused campaign is launched again instead."""
    if state.deleted:
        return _deleted("copied")
    if state.status is not CampaignStatus.CANCELLED:
        return Refusal(
            "invalid_status",
            "only a stopped (cancelled) campaign is run again as a copy, not a "
            f"{state.status.value} one; launch it again instead",
        )
    return None


@dataclass(frozen=True)
class Missed:
    """A run whose time passed while no scheduler ran: flagged, never started late unasked."""

    due_at: datetime


def failure_reason(unmet: Iterable[Unmet]) -> str:
    """Every unmet requirement, each with its code, as the campaign's failure reason."""
    listed = "; ".join(f"{u.code}: {u.detail}" for u in unmet)
    return f"could not start at its scheduled time: {listed}"


def fire(
    state: CampaignState,
    readiness: LaunchReadiness,
    *,
    due_at: datetime,
    now: datetime,
    grace: timedelta = MISSED_RUN_GRACE,
) -> Change | Missed | None:
    """A scheduled or recurring campaign whose run time has come (issue 16): started, failed
    with every unmet requirement (checked again now, not only at launch), or missed when the
    time is more than `grace` behind. None: not a campaign that fires (the caller skips it)."""
    if state.deleted or not state.enabled or state.status is not CampaignStatus.SCHEDULED:
        return None
    if now - due_at > grace:
        return Missed(due_at)
    unmet = launch_requirements(state, readiness)
    if unmet:
        return _same(state, status=CampaignStatus.FAILED, failure=failure_reason(unmet))
    recurring = state.launch_type is LaunchType.RECURRING
    effect = ExecutionEffect.RESTART if recurring else ExecutionEffect.RESUME
    return _same(state, status=CampaignStatus.ACTIVE, executions=effect)


def launches_on_save(state: CampaignState, readiness: LaunchReadiness) -> bool:
    """A "Now" campaign starts when it is saved with every launch requirement met (issue 16);
    otherwise it stays a draft that lists what is missing until a person launches it."""
    return (
        state.launch_type is LaunchType.NOW
        and state.status is CampaignStatus.DRAFT
        and not state.deleted
        and not launch_requirements(state, readiness)
    )


def after_run(launch_type: LaunchType) -> CampaignStatus:
    """Where a campaign goes once every execution of a run is finished: recurring campaigns
    return to scheduled for their next occurrence."""
    if launch_type is LaunchType.RECURRING:
        return CampaignStatus.SCHEDULED
    return CampaignStatus.COMPLETED


def copy_name(name: str, limit: int = 200) -> str:
    """Spec 001: "{original_name} (Copy)", within the name's length limit."""
    suffix = " (Copy)"
    return name[: limit - len(suffix)] + suffix


# Editing --------------------------------------------------------------------------------------


class FieldGroup(StrEnum):
    METADATA = "metadata"  # name, description, account, time zone, tags, response handling
    AB_TEST = "ab_test"  # settings.ab_test
    FLOW = "flow"  # flow and the launch plan (launch type, scheduled_at, recurrence)


# A failed campaign is edited as a paused one, so its cause can be fixed (issue 16).
FLOW_EDITABLE_IN = frozenset(
    {CampaignStatus.DRAFT, CampaignStatus.PAUSED, CampaignStatus.SCHEDULED, CampaignStatus.FAILED}
)


def edit_refusal(state: CampaignState, groups: Iterable[FieldGroup]) -> Refusal | None:
    """Spec 001, "Edit Campaign" and status-based restrictions."""
    if state.deleted:
        return _deleted("edited")
    if state.status in READ_ONLY:
        return Refusal(
            "campaign_read_only",
            f"a {state.status.value} campaign is a historical record and cannot be "
            "edited; duplicate it instead",
        )
    wanted = set(groups)
    if FieldGroup.FLOW in wanted and state.status not in FLOW_EDITABLE_IN:
        return Refusal(
            "flow_locked",
            f"the flow of a {state.status.value} campaign cannot be edited; pause it first",
        )
    if FieldGroup.AB_TEST in wanted and state.status is CampaignStatus.ACTIVE:
        return Refusal(
            "flow_locked",
            "A/B test settings of an active campaign cannot be edited; pause it first",
        )
    return None


# Display status (spec 004) --------------------------------------------------------------------


class DisplayStatus(StrEnum):
    READY = "Ready"
    RUNNING = "Running"
    WAITING = "Waiting"
    STOPPED = "Stopped"
    DONE = "Done"
    DRAFT = "Draft"
    FAILED = "Failed"


_DISPLAY = {
    CampaignStatus.SCHEDULED: DisplayStatus.WAITING,
    CampaignStatus.ACTIVE: DisplayStatus.RUNNING,
    CampaignStatus.PAUSED: DisplayStatus.STOPPED,
    CampaignStatus.CANCELLED: DisplayStatus.STOPPED,
    CampaignStatus.COMPLETED: DisplayStatus.DONE,
    CampaignStatus.FAILED: DisplayStatus.FAILED,
}


def display_status(state: CampaignState, readiness: LaunchReadiness) -> DisplayStatus:
    """docs/campaigns.md: Ready is a draft launched by a person (manual, or a "now" one whose
    save found a requirement unmet) that could be launched now; any other draft is Draft. A
    disabled scheduled campaign will not fire, so it is not Waiting but Stopped."""
    if state.status is CampaignStatus.DRAFT:
        by_hand = state.launch_type in (LaunchType.MANUAL, LaunchType.NOW)
        ready = by_hand and not launch_requirements(state, readiness)
        return DisplayStatus.READY if ready else DisplayStatus.DRAFT
    if state.status is CampaignStatus.SCHEDULED and not state.enabled:
        return DisplayStatus.STOPPED
    return _DISPLAY[state.status]
