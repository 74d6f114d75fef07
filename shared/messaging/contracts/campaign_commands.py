"""dripline.campaign.commands: lifecycle commands on one campaign, keyed by campaign id."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from shared.messaging.contracts.base import (
    EXAMPLE_CAMPAIGN,
    EXAMPLE_CONTACT,
    EXAMPLE_COPY,
    Contract,
    MessageType,
    Payload,
)
from shared.messaging.topics import Topic

MAX_CONTACTS_PER_COMMAND = 10_000


class CampaignCommand(Payload):
    """pause, stop, enable, disable, delete and restore name only their campaign."""

    campaign_id: UUID


class CampaignLaunch(Payload):
    campaign_id: UUID
    reset_completed: bool = Field(
        default=False,
        description="Also restart completed executions (nobody is messaged twice by accident).",
    )


class CampaignDuplicate(Payload):
    campaign_id: UUID
    copy_id: UUID = Field(
        description="The id the copy gets; chosen by the requester, so a "
        "redelivered command creates one copy."
    )
    unfinished_only: bool = Field(
        default=False,
        description="Run again as a copy (issue 16): only from a stopped (cancelled) campaign; "
        "the copy holds exactly the contacts whose executions never finished (neither "
        "completed nor failed), enrolled as add_contacts does.",
    )


class CampaignContacts(Payload):
    campaign_id: UUID
    contact_ids: list[UUID] = Field(min_length=1, max_length=MAX_CONTACTS_PER_COMMAND)


# What a consumer of this topic may be handed: every payload names its campaign.
CampaignCommandPayload = CampaignCommand | CampaignLaunch | CampaignDuplicate | CampaignContacts

_C = Topic.CAMPAIGN_COMMANDS
CONTRACTS: tuple[Contract[CampaignCommandPayload], ...] = (
    Contract(
        _C,
        MessageType.CAMPAIGN_LAUNCH,
        1,
        CampaignLaunch,
        True,
        {"campaign_id": EXAMPLE_CAMPAIGN, "reset_completed": False},
    ),
    *(
        Contract(_C, command, 1, CampaignCommand, True, {"campaign_id": EXAMPLE_CAMPAIGN})
        for command in (
            MessageType.CAMPAIGN_PAUSE,
            MessageType.CAMPAIGN_STOP,
            MessageType.CAMPAIGN_ENABLE,
            MessageType.CAMPAIGN_DISABLE,
            MessageType.CAMPAIGN_DELETE,
            MessageType.CAMPAIGN_RESTORE,
        )
    ),
    Contract(
        _C,
        MessageType.CAMPAIGN_DUPLICATE,
        1,
        CampaignDuplicate,
        True,
        {"campaign_id": EXAMPLE_CAMPAIGN, "copy_id": EXAMPLE_COPY, "unfinished_only": False},
    ),
    Contract(
        _C,
        MessageType.CAMPAIGN_ADD_CONTACTS,
        1,
        CampaignContacts,
        True,
        {"campaign_id": EXAMPLE_CAMPAIGN, "contact_ids": [EXAMPLE_CONTACT]},
    ),
    Contract(
        _C,
        MessageType.CAMPAIGN_REMOVE_CONTACTS,
        1,
        CampaignContacts,
        True,
        {"campaign_id": EXAMPLE_CAMPAIGN, "contact_ids": [EXAMPLE_CONTACT]},
    ),
)
