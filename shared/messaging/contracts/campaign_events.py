"""dripline.campaign.events: the outcomes of campaign commands, keyed by campaign id."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.messaging.contracts.base import (
    EXAMPLE_CAMPAIGN,
    EXAMPLE_COPY,
    Contract,
    MessageType,
    Payload,
)
from shared.messaging.topics import Topic

CampaignStatusName = Literal[
    "draft", "scheduled", "active", "paused", "completed", "cancelled", "failed"
]


class CampaignStatusChanged(Payload):
    """The outcome of a lifecycle command that was applied (also when nothing had to change)."""

    campaign_id: UUID
    previous_status: CampaignStatusName
    status: CampaignStatusName
    enabled: bool
    cause: str = Field(description="The command type that caused the change.")
    previous_enabled: bool | None = None
    deleted: bool = False
    executions_affected: int = Field(
        default=0, description="Executions resumed, paused or cancelled by the command."
    )


class Unmet(Payload):
    code: str
    detail: str


class CampaignCommandRejected(Payload):
    campaign_id: UUID
    command: str
    code: str = Field(description="Stable machine code, as in HTTP problem details.")
    detail: str
    unmet: list[Unmet] = Field(
        default_factory=list, description="Each unmet launch requirement, with its own code."
    )


class CampaignContactsAdded(Payload):
    campaign_id: UUID
    requested: int
    added: int
    skipped_duplicates: int
    skipped_do_not_contact: int = Field(
        default=0, description="Contacts on the do-not-contact list: not enrolled."
    )
    skipped_recently_contacted: int = Field(
        default=0,
        description="Contacts a campaign of the organization messaged within its"
        " recontact_after_days: not enrolled.",
    )
    in_other_active_campaigns: int = Field(
        default=0,
        description="Of those added, how many have an unfinished execution in another active"
        " campaign of the same organization (or personal owner). Informational: they are added.",
    )
    not_found: int = Field(description="Contacts that do not exist or that the actor cannot see.")
    reactivated: bool = Field(description="A completed campaign became active again.")


class CampaignContactsRemoved(Payload):
    campaign_id: UUID
    requested: int
    removed: int
    not_in_campaign: int


class CampaignDuplicated(Payload):
    campaign_id: UUID
    copy_id: UUID
    contacts_added: int = Field(
        default=0,
        ge=0,
        description="Contacts enrolled in the copy: those that never finished, for a copy of "
        "the unfinished; 0 for a plain duplicate (it has no contacts).",
    )


# What a consumer of this topic may be handed: every event names its campaign.
CampaignEvent = (
    CampaignStatusChanged
    | CampaignCommandRejected
    | CampaignContactsAdded
    | CampaignContactsRemoved
    | CampaignDuplicated
)

_E = Topic.CAMPAIGN_EVENTS
CONTRACTS: tuple[Contract[CampaignEvent], ...] = (
    Contract(
        _E,
        MessageType.CAMPAIGN_STATUS_CHANGED,
        1,
        CampaignStatusChanged,
        False,
        {
            "campaign_id": EXAMPLE_CAMPAIGN,
            "previous_status": "draft",
            "status": "active",
            "enabled": True,
            "cause": "campaign.launch",
            "previous_enabled": True,
            "deleted": False,
            "executions_affected": 1,
        },
    ),
    Contract(
        _E,
        MessageType.CAMPAIGN_COMMAND_REJECTED,
        1,
        CampaignCommandRejected,
        False,
        {
            "campaign_id": EXAMPLE_CAMPAIGN,
            "command": "campaign.launch",
            "code": "launch_requirements_unmet",
            "detail": "cannot launch: the campaign has no contacts; add at least one",
            "unmet": [
                {"code": "no_contacts", "detail": "the campaign has no contacts; add at least one"}
            ],
        },
    ),
    Contract(
        _E,
        MessageType.CAMPAIGN_CONTACTS_ADDED,
        1,
        CampaignContactsAdded,
        False,
        {
            "campaign_id": EXAMPLE_CAMPAIGN,
            "requested": 3,
            "added": 2,
            "skipped_duplicates": 1,
            "skipped_do_not_contact": 0,
            "skipped_recently_contacted": 0,
            "in_other_active_campaigns": 1,
            "not_found": 0,
            "reactivated": False,
        },
    ),
    Contract(
        _E,
        MessageType.CAMPAIGN_CONTACTS_REMOVED,
        1,
        CampaignContactsRemoved,
        False,
        {"campaign_id": EXAMPLE_CAMPAIGN, "requested": 2, "removed": 1, "not_in_campaign": 1},
    ),
    Contract(
        _E,
        MessageType.CAMPAIGN_DUPLICATED,
        1,
        CampaignDuplicated,
        False,
        {"campaign_id": EXAMPLE_CAMPAIGN, "copy_id": EXAMPLE_COPY, "contacts_added": 0},
    ),
)
