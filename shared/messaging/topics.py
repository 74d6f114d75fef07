"""The topic contract: logical names, keys and partition counts.

Names are a contract with other systems; payloads are versioned in shared.messaging.contracts.
A deployment (or a test) may prefix every physical topic name, see Settings.topic_prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Topic(StrEnum):
    CAMPAIGN_COMMANDS = "dripline.campaign.commands"
    BULK_COMMANDS = "dripline.bulk.commands"
    CONTACT_COMMANDS = "dripline.contact.commands"
    ACCOUNT_COMMANDS = "dripline.account.commands"
    EXECUTIONS_DUE = "dripline.executions.due"
    CAMPAIGN_EVENTS = "dripline.campaign.events"
    EXECUTION_EVENTS = "dripline.execution.events"
    ACCOUNT_EVENTS = "dripline.account.events"
    BULK_EVENTS = "dripline.bulk.events"
    OPPORTUNITY_EVENTS = "dripline.opportunity.events"
    CONTACT_EVENTS = "dripline.contact.events"
    CONVERSATION_EVENTS = "dripline.conversation.events"
    ORGANIZATION_EVENTS = "dripline.organization.events"

    @property
    def dlq(self) -> str:
        return f"{self.value}.dlq"


@dataclass(frozen=True)
class TopicSpec:
    topic: Topic
    partitions: int
    key: str
    carries: str


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(Topic.CAMPAIGN_COMMANDS, 8, "campaign id",
              "launch, pause, stop, enable, disable, delete, restore, add/remove contacts"),
    TopicSpec(Topic.BULK_COMMANDS, 4, "bulk operation or bulk action id",
              "bulk operations over campaigns; bulk actions over contacts and their edits"),
    TopicSpec(Topic.CONTACT_COMMANDS, 8, "organization id (user id in personal mode)",
              "do-not-contact list additions and removals"),
    TopicSpec(Topic.ACCOUNT_COMMANDS, 4, "account id (a login's id for logins and imports)",
              "health checks on demand, login steps, session imports"),
    TopicSpec(Topic.EXECUTIONS_DUE, 16, "Telegram account id", "an execution that is due now"),
    TopicSpec(Topic.CAMPAIGN_EVENTS, 8, "campaign id",
              "status and enabled changes, launch, completion, deletion, command rejections"),
    TopicSpec(Topic.EXECUTION_EVENTS, 16, "campaign id",
              "execution progress, message sent / failed / delivered, reply detected"),
    TopicSpec(Topic.ACCOUNT_EVENTS, 4, "account id (a login's id for login outcomes)",
              "health changes, flood waits, the outcomes of health checks, logins and imports"),
    TopicSpec(Topic.BULK_EVENTS, 4, "bulk operation id", "progress and per-item results"),
    TopicSpec(Topic.OPPORTUNITY_EVENTS, 4, "opportunity id",
              "an opportunity entered a pipeline stage (created there or moved)"),
    TopicSpec(Topic.CONTACT_EVENTS, 8, "organization id (user id in personal mode)",
              "do-not-contact entries added and removed, contact command rejections"),
    TopicSpec(Topic.CONVERSATION_EVENTS, 8, "conversation id",
              "the inbox: a reply received in a conversation, a conversation taken over"),
    TopicSpec(Topic.ORGANIZATION_EVENTS, 4, "organization id (user id in personal mode)",
              "the fleet circuit breaker: a context's sending paused and resumed"),
)  # fmt: skip

DLQ_PARTITIONS = 1


def physical_name(logical: str, prefix: str) -> str:
    return f"{prefix}{logical}"


def all_topic_partitions() -> dict[str, int]:
    """Every logical topic, dead-letter topics included, with its partition count."""
    partitions = {spec.topic.value: spec.partitions for spec in TOPICS}
    partitions.update({spec.topic.dlq: DLQ_PARTITIONS for spec in TOPICS})
    return partitions
