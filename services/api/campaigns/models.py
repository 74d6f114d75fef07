"""The shapes of /campaign-flows: request bodies, responses, and their cross-field checks."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time
from typing import Annotated, Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from services.api.problems import field_error
from shared.db.campaigns import readiness_of
from shared.domain import flows, schedules
from shared.domain.accounts import AccountHealth
from shared.domain.campaigns import (
    CampaignState,
    CampaignStatus,
    DisplayStatus,
    LaunchType,
    display_status,
    launch_requirements,
)
from shared.domain.crm import CompanyOnReply
from shared.domain.moments import Moment
from shared.messaging.contracts import MAX_CONTACTS_PER_COMMAND

Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ABTest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    metric: Literal["response_rate", "delivery_rate", "completion_rate"] = "response_rate"


class ResponseHandling(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stop_on_reply: bool = Field(default=True, description="End a contact's flow when it replies.")
    reply_tag: Tag | None = Field(default=None, description="Tag added to a contact that replies.")
    stop_company_on_reply: CompanyOnReply = Field(
        default=CompanyOnReply.OFF,
        description="When a contact of a company replies: `stop` cancels, `pause` pauses the"
        " other contacts of the same company in this campaign (reason `company_replied`);"
        " `off` leaves them (docs/companies.md).",
    )


class ActiveHours(BaseModel):
    """When the campaign may send, in its time zone (or each recipient's): ISO weekdays
    (Monday = 1) and a time of day; an end before the start crosses midnight."""

    model_config = ConfigDict(extra="forbid")
    days: list[Annotated[int, Field(ge=1, le=7)]] = Field(
        default_factory=lambda: [1, 2, 3, 4, 5, 6, 7], min_length=1, max_length=7
    )
    start: time | None = None
    end: time | None = None
    in_recipient_zone: bool = Field(
        default=False,
        strict=True,
        description="Read the days and hours in each contact's own time zone (its time_zone, "
        "else the one its phone number's country implies), falling back to the campaign's "
        "time zone for a contact with neither.",
    )

    @model_validator(mode="after")
    def a_real_window(self) -> ActiveHours:
        if (self.start is None) != (self.end is None):
            raise ValueError("give both start and end, or neither")
        if self.start is not None and self.start == self.end:
            raise ValueError("start and end must differ")
        return self


class CampaignSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ab_test: ABTest = Field(default_factory=ABTest)
    response_handling: ResponseHandling = Field(default_factory=ResponseHandling)
    active_hours: ActiveHours | None = None


class SettingsPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ab_test: ABTest | None = None
    response_handling: ResponseHandling | None = None
    active_hours: ActiveHours | None = None


def _known_timezone(value: str | None) -> str | None:
    if value is None:
        return value
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


EMPTY_FLOW: dict[str, Any] = {"nodes": [], "edges": []}


class CampaignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: str | None = Field(default=None, max_length=5000)
    telegram_account_id: UUID | None = None
    timezone: str = Field(default="UTC", max_length=64)
    launch_type: LaunchType = LaunchType.MANUAL
    scheduled_at: Moment | None = None
    recurrence: str | None = Field(default=None, max_length=100)
    flow: dict[str, Any] = Field(
        default_factory=lambda: dict(EMPTY_FLOW),
        description="{start, nodes, edges}; see docs/flows.md",
    )
    settings: CampaignSettings = Field(default_factory=CampaignSettings)
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    contact_ids: list[UUID] = Field(
        default_factory=list,
        max_length=MAX_CONTACTS_PER_COMMAND,
        description="Contacts to add once the campaign is saved (as POST .../contacts does).",
    )

    _timezone = field_validator("timezone")(_known_timezone)


class CampaignPatch(BaseModel):
    """Only the fields present change; null clears the optional ones."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: str | None = Field(default=None, max_length=5000)
    telegram_account_id: UUID | None = None
    timezone: str | None = Field(default=None, max_length=64)
    launch_type: LaunchType | None = None
    scheduled_at: Moment | None = None
    recurrence: str | None = Field(default=None, max_length=100)
    flow: dict[str, Any] | None = None
    settings: SettingsPatch | None = None
    tags: list[Tag] | None = Field(default=None, max_length=50)

    _timezone = field_validator("timezone")(_known_timezone)


NOT_NULL = ("name", "timezone", "launch_type", "flow", "settings", "tags")


def plan_errors(
    launch_type: LaunchType, scheduled_at: datetime | None, recurrence: str | None
) -> list[dict[str, Any]]:
    """The launch plan's cross-field rules, each naming its field."""
    errors = []
    if launch_type is LaunchType.SCHEDULE and scheduled_at is None:
        errors.append(
            field_error("scheduled_at", "launch_type 'schedule' needs scheduled_at", "missing")
        )
    if launch_type is LaunchType.RECURRING:
        if not recurrence:
            errors.append(
                field_error("recurrence", "launch_type 'recurring' needs a cron rule", "missing")
            )
        elif (problem := schedules.recurrence_problem(recurrence)) is not None:
            errors.append(field_error("recurrence", problem))
    elif recurrence and (problem := schedules.recurrence_problem(recurrence)) is not None:
        errors.append(field_error("recurrence", problem))
    return errors


def flow_errors(flow: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every problem of a flow; an empty flow is allowed while the campaign is being built."""
    if (
        flow.keys() <= {"nodes", "edges", "start"}
        and not flow.get("nodes")
        and not flow.get("edges")
    ):
        return []
    _, problems = flows.validate(flow)
    errors = []
    for problem in problems:
        error = problem.as_dict()
        error["field"] = "flow" + (f".{problem.field}" if problem.field else "")
        error["type"] = problem.code
        errors.append(error)
    return errors


class AccountSummary(BaseModel):
    id: UUID
    display_name: str
    health_status: AccountHealth


class Requirement(BaseModel):
    code: str
    message: str


# Statuses from which a campaign can still start, by a person or at its run time.
_STARTS_FROM = frozenset(
    {CampaignStatus.DRAFT, CampaignStatus.PAUSED, CampaignStatus.SCHEDULED, CampaignStatus.FAILED}
)


class Campaign(BaseModel):
    id: UUID
    organization_id: UUID | None
    created_by: UUID
    creator_email: str
    name: str
    description: str | None
    channel: Literal["telegram"] = "telegram"
    telegram_account_id: UUID | None
    telegram_account: AccountSummary | None
    sending_blocked: Literal["account_deleted"] | None = Field(
        description="Why nothing is sent for this campaign now, whatever its status:"
        " `account_deleted`, its Telegram account was deleted (its executions wait until it"
        " gets another one)"
    )
    sending_paused_reason: str | None = Field(
        default=None,
        description="Why the campaign's sends wait now, whatever its status: the fleet circuit"
        " breaker paused the sending of its account's organization (or owner, in personal mode)"
        " because most of its Telegram accounts are limited, frozen or cooling down within the"
        " last hour (docs/accounts.md). Its due sends go out by themselves once it resets.",
    )
    timezone: str
    launch_type: LaunchType
    scheduled_at: datetime | None
    recurrence: str | None
    next_run_at: datetime | None
    missed_run_at: datetime | None = Field(
        description="A run time that passed while the scheduler was down: nothing was started"
        " late. Run it now (POST .../run-now) or reschedule it (PATCH); either clears this."
    )
    status: CampaignStatus
    display_status: DisplayStatus
    unmet_requirements: list[Requirement] = Field(
        description="What a launch (or the next scheduled run) would still need; empty for a"
        " campaign that is running or over."
    )
    enabled: bool
    failure_reason: str | None
    flow: dict[str, Any]
    settings: dict[str, Any]
    tags: list[str]
    has_contacts: bool
    launched_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Campaign:
        values = {name: row[name] for name in cls.model_fields if name in row}
        state = CampaignState(
            CampaignStatus(row["status"]),
            row["enabled"],
            LaunchType(row["launch_type"]),
            row["deleted_at"] is not None,
        )
        readiness = readiness_of(row)
        values["display_status"] = display_status(state, readiness)
        unmet = launch_requirements(state, readiness) if state.status in _STARTS_FROM else ()
        values["unmet_requirements"] = [Requirement(code=u.code, message=u.detail) for u in unmet]
        values["telegram_account"] = (
            AccountSummary(
                id=row["telegram_account_id"],
                display_name=row["account_name"],
                health_status=row["account_health"],
            )
            if row["account_name"] is not None
            else None
        )
        # The list joins only live accounts: an account named but not found was deleted.
        deleted = row["telegram_account_id"] is not None and row["account_name"] is None
        values["sending_blocked"] = "account_deleted" if deleted else None
        paused = row.get("fleet_paused")
        values["sending_paused_reason"] = f"fleet breaker: {paused}" if paused else None
        return cls.model_validate(values)


class CampaignPage(BaseModel):
    items: list[Campaign]
    next_cursor: str | None


class ContactSelection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    contact_ids: list[UUID] = Field(min_length=1, max_length=MAX_CONTACTS_PER_COMMAND)


class ContactsAdded(BaseModel):
    requested: int
    added: int
    skipped_duplicates: int
    skipped_do_not_contact: int = Field(description="On the do-not-contact list: not enrolled.")
    skipped_recently_contacted: int = Field(
        description="Messaged by a campaign of the organization within its"
        " recontact_after_days: not enrolled."
    )
    in_other_active_campaigns: int = Field(
        description="Of those added, how many are in another active campaign (an unfinished"
        " execution). Informational: they are added all the same."
    )
    not_found: int
    reactivated: bool
    campaign: Campaign


class ContactsRemoved(BaseModel):
    requested: int
    removed: int
    not_in_campaign: int
    campaign: Campaign


class CampaignContact(BaseModel):
    execution_id: UUID
    contact_id: UUID
    status: str
    current_node_id: str | None
    next_execution_at: datetime | None
    error_message: str | None
    first_name: str | None
    last_name: str | None
    telegram_username: str | None
    phone: str | None
    company_id: UUID | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


class CampaignContactPage(BaseModel):
    items: list[CampaignContact]
    next_cursor: str | None


class CalendarEntry(BaseModel):
    date: str = Field(description="The launch's date in the campaign's time zone (YYYY-MM-DD).")
    at: datetime
    kind: Literal["scheduled", "recurring", "launched"]
    campaign_id: UUID
    name: str
    description: str | None
    channel: Literal["telegram"] = "telegram"
    status: CampaignStatus
    launch_type: LaunchType
    timezone: str


class Calendar(BaseModel):
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    items: list[CalendarEntry]
    truncated: bool
