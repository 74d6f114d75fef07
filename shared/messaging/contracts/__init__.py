"""Versioned payload contracts: which message types each topic carries, and their schemas.

One module per topic declares its payloads beside their contract entries and examples, and
the union of what a consumer of that topic may be handed; `registry` gathers them and decodes
records against them. Other systems publish commands against these contracts; a message that
does not fit is dead-lettered with the reason. Every contract carries an example, and the
contract tests feed each example through the consumer that handles it.
"""

from __future__ import annotations

from shared.messaging.contracts.account_commands import (
    AccountHealthCheck,
    AccountImportSession,
    AccountLogin,
    AccountTestSend,
    ConversationRead,
    ConversationSend,
    LoginDevice,
    LoginProxy,
)
from shared.messaging.contracts.account_events import (
    AccountChecked,
    AccountEvent,
    AccountHealthChanged,
    AccountLoginProgressed,
    AccountTestSent,
)
from shared.messaging.contracts.base import Contract, MessageType, Payload, PayloadT_co
from shared.messaging.contracts.bulk_commands import (
    MAX_CAMPAIGNS_PER_BULK,
    BulkActionRequest,
    BulkCommand,
    BulkOperationRequest,
)
from shared.messaging.contracts.bulk_events import (
    BulkActionProgress,
    BulkActionRejected,
    BulkEvent,
    BulkItemOutcome,
    BulkOperationProgress,
)
from shared.messaging.contracts.campaign_commands import (
    MAX_CONTACTS_PER_COMMAND,
    CampaignCommand,
    CampaignCommandPayload,
    CampaignContacts,
    CampaignDuplicate,
    CampaignLaunch,
)
from shared.messaging.contracts.campaign_events import (
    CampaignCommandRejected,
    CampaignContactsAdded,
    CampaignContactsRemoved,
    CampaignDuplicated,
    CampaignEvent,
    CampaignStatusChanged,
    CampaignStatusName,
    Unmet,
)
from shared.messaging.contracts.contact_commands import (
    ContactCommand,
    ContactRef,
    ContactTags,
    ContactUpsert,
    DoNotContactAdd,
    DoNotContactRemove,
)
from shared.messaging.contracts.contact_events import (
    ContactChanged,
    ContactCommandRejected,
    ContactEvent,
    DoNotContactAdded,
    DoNotContactRemoved,
)
from shared.messaging.contracts.conversation_events import (
    ConversationEvent,
    ConversationMessageReceived,
    ConversationTakenOver,
)
from shared.messaging.contracts.execution_events import (
    ExecutionEvent,
    ExecutionProgressed,
    ExecutionStatusName,
    MessageDelivered,
    MessageFailed,
    MessageSent,
    ReplyReceived,
)
from shared.messaging.contracts.executions_due import ExecutionDue
from shared.messaging.contracts.opportunity_events import OpportunityStageChanged
from shared.messaging.contracts.organization_events import OrganizationEvent, SendingChanged
from shared.messaging.contracts.registry import (
    CONTRACTS,
    ContractViolation,
    Decoded,
    contract_for,
    contracts_on,
    decode,
)

__all__ = [
    "CONTRACTS",
    "MAX_CAMPAIGNS_PER_BULK",
    "MAX_CONTACTS_PER_COMMAND",
    "AccountChecked",
    "AccountEvent",
    "AccountHealthChanged",
    "AccountHealthCheck",
    "AccountImportSession",
    "AccountLogin",
    "AccountLoginProgressed",
    "AccountTestSend",
    "AccountTestSent",
    "BulkActionProgress",
    "BulkActionRejected",
    "BulkActionRequest",
    "BulkCommand",
    "BulkEvent",
    "BulkItemOutcome",
    "BulkOperationProgress",
    "BulkOperationRequest",
    "CampaignCommand",
    "CampaignCommandPayload",
    "CampaignCommandRejected",
    "CampaignContacts",
    "CampaignContactsAdded",
    "CampaignContactsRemoved",
    "CampaignDuplicate",
    "CampaignDuplicated",
    "CampaignEvent",
    "CampaignLaunch",
    "CampaignStatusChanged",
    "CampaignStatusName",
    "ContactChanged",
    "ContactCommand",
    "ContactCommandRejected",
    "ContactEvent",
    "ContactRef",
    "ContactTags",
    "ContactUpsert",
    "Contract",
    "ContractViolation",
    "ConversationEvent",
    "ConversationMessageReceived",
    "ConversationRead",
    "ConversationSend",
    "ConversationTakenOver",
    "Decoded",
    "DoNotContactAdd",
    "DoNotContactAdded",
    "DoNotContactRemove",
    "DoNotContactRemoved",
    "ExecutionDue",
    "ExecutionEvent",
    "ExecutionProgressed",
    "ExecutionStatusName",
    "LoginDevice",
    "LoginProxy",
    "MessageDelivered",
    "MessageFailed",
    "MessageSent",
    "MessageType",
    "OpportunityStageChanged",
    "OrganizationEvent",
    "Payload",
    "PayloadT_co",
    "ReplyReceived",
    "SendingChanged",
    "Unmet",
    "contract_for",
    "contracts_on",
    "decode",
]
