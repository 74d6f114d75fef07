"""dripline.account.events: a Telegram account's health, keyed by account id."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.messaging.contracts.base import (
    EXAMPLE_ACCOUNT,
    EXAMPLE_CAMPAIGN,
    EXAMPLE_CONTACT,
    EXAMPLE_LOGIN,
    Contract,
    MessageType,
    Payload,
)
from shared.messaging.topics import Topic


class AccountHealthChanged(Payload):
    telegram_account_id: UUID
    previous_status: str
    status: str
    detail: str | None = None
    cooldown_until: datetime | None = None


class AccountChecked(Payload):
    """The answer to account.check_health, under its correlation id. A transition the check
    found is its own account.health_changed event, emitted before this one."""

    telegram_account_id: UUID
    result: Literal["checked", "not_checked", "not_found"] = Field(
        description="checked: probed and recorded; not_checked: a dead account (banned, or its "
        "login lost: a person must act) or one cooling down is not probed; not_found: no such "
        "account that the actor may see."
    )
    status: str | None = Field(description="The account's health after the check.")
    detail: str | None = None


class AccountLoginProgressed(Payload):
    """The answer to account.login or account.import_session, under its correlation id. Never
    carries session material."""

    login_id: UUID
    status: Literal["code_sent", "password_needed", "logged_in", "failed"] = Field(
        description="code_sent: Telegram sent the code; password_needed: the code was right "
        "and the account has a 2FA password; logged_in: the account is saved with its session; "
        "failed: see code."
    )
    telegram_account_id: UUID | None = None
    expires_at: datetime | None = Field(
        default=None, description="When a pending login is forgotten."
    )
    code: str | None = Field(
        default=None,
        description="Why it failed: phone_number_invalid, phone_code_invalid, "
        "phone_code_expired, password_invalid, flood_wait, phone_number_banned, login_expired, "
        "login_refused, telegram_unreachable, proxy_unreachable, session_invalid, session_dead, "
        "session_conflict, login_not_found, telegram_account_not_found, permission_denied, "
        "telethon_not_configured.",
    )
    detail: str | None = None
    retry_after_s: int | None = None


class AccountTestSent(Payload):
    """The answer to account.test_send, under its correlation id."""

    telegram_account_id: UUID
    campaign_id: UUID
    node_id: str
    contact_id: UUID
    result: Literal["sent", "refused", "failed"] = Field(
        description="sent: Telegram accepted it into the account's Saved Messages; refused: "
        "it did not go (see code); failed: Telegram refused it (code: the failure's category)."
    )
    code: str | None = Field(
        default=None,
        description="refused: campaign_not_found, permission_denied, flow_invalid, "
        "node_not_found, not_a_send_step, contact_not_found, campaign_has_no_account, "
        "account_unavailable, attachment_not_found, message_too_long, test_send_rate_limited; "
        "failed: flood_wait, account_limited, account_frozen, auth_lost, session_conflict, "
        "banned, contact_permanent, transient, unknown.",
    )
    detail: str | None = None
    retry_after_s: int | None = None
    text: str | None = Field(default=None, description="The text (caption) as rendered.")
    attachment_id: UUID | None = None
    telegram_message_id: int | None = None
    sent_at: datetime | None = None


# What a consumer of this topic may be handed.
AccountEvent = AccountHealthChanged | AccountChecked | AccountLoginProgressed | AccountTestSent

HEALTH_CHANGED = Contract(
    Topic.ACCOUNT_EVENTS,
    MessageType.ACCOUNT_HEALTH_CHANGED,
    1,
    AccountHealthChanged,
    False,
    {
        "telegram_account_id": EXAMPLE_ACCOUNT,
        "previous_status": "active",
        "status": "cooldown",
        "detail": "flood wait of 120 s",
        "cooldown_until": "2026-11-22T10:02:00Z",
    },
)
CHECKED = Contract(
    Topic.ACCOUNT_EVENTS,
    MessageType.ACCOUNT_CHECKED,
    1,
    AccountChecked,
    False,
    {
        "telegram_account_id": EXAMPLE_ACCOUNT,
        "result": "checked",
        "status": "active",
        "detail": None,
    },
)
LOGIN_PROGRESSED = Contract(
    Topic.ACCOUNT_EVENTS,
    MessageType.ACCOUNT_LOGIN_PROGRESSED,
    1,
    AccountLoginProgressed,
    False,
    {
        "login_id": EXAMPLE_LOGIN,
        "status": "code_sent",
        "telegram_account_id": EXAMPLE_ACCOUNT,
        "expires_at": "2026-11-22T10:15:00Z",
        "code": None,
        "detail": None,
        "retry_after_s": None,
    },
)
TEST_SENT = Contract(
    Topic.ACCOUNT_EVENTS,
    MessageType.ACCOUNT_TEST_SENT,
    1,
    AccountTestSent,
    False,
    {
        "telegram_account_id": EXAMPLE_ACCOUNT,
        "campaign_id": EXAMPLE_CAMPAIGN,
        "node_id": "hello",
        "contact_id": EXAMPLE_CONTACT,
        "result": "sent",
        "code": None,
        "detail": None,
        "retry_after_s": None,
        "text": "Hello Ada!",
        "attachment_id": None,
        "telegram_message_id": 4711,
        "sent_at": "2026-11-22T10:00:03Z",
    },
)
CONTRACTS: tuple[Contract[AccountEvent], ...] = (
    HEALTH_CHANGED,
    CHECKED,
    LOGIN_PROGRESSED,
    TEST_SENT,
)
