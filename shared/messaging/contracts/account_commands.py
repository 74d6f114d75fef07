"""dripline.account.commands: what may be asked of the sender about a Telegram account, keyed
by account id. Each command is answered on dripline.account.events under its correlation id."""

from __future__ import annotations

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


class AccountHealthCheck(Payload):
    """Probe the account now and record what is found (TELEGRAM.md); answered by
    account.checked. The actor must see the account: its personal owner, or a member of its
    organization."""

    telegram_account_id: UUID


CHECK_HEALTH = Contract(
    Topic.ACCOUNT_COMMANDS,
    MessageType.ACCOUNT_CHECK_HEALTH,
    1,
    AccountHealthCheck,
    True,
    {"telegram_account_id": EXAMPLE_ACCOUNT},
)


class LoginProxy(Payload):
    """The proxy every connection of a login or import goes through (docs/accounts.md,
    "Proxies"); the account created keeps it. The password (an MTProxy's secret) travels
    sealed."""

    type: Literal["socks5", "http", "mtproxy"]
    host: str = Field(max_length=253)
    port: int = Field(ge=1, le=65535)
    username: str | None = Field(default=None, max_length=255)
    password_sealed: str | None = None


class LoginDevice(Payload):
    """The device a login or import presents to Telegram on every connect, kept by the account
    created (docs/accounts.md, "Device identity")."""

    device_model: str = Field(max_length=64)
    system_version: str = Field(max_length=64)
    app_version: str = Field(max_length=64)
    lang_code: str = Field(max_length=16)
    system_lang_code: str = Field(max_length=16)


class AccountLogin(Payload):
    """One step of a phone login (docs/accounts.md, "Logging in"), keyed by the login's id and
    answered by account.login_progressed. `start` sends the code (phone and display_name
    given; telegram_account_id to log that account in again in place), `code` submits it,
    `password` submits the 2FA password. Secrets travel sealed with DRIPLINE_SESSION_KEY
    (shared/crypto.py), never in clear. The actor must own the login (code, password), or be
    allowed to manage the account logged in again. `proxy` and `device` (start of a new login
    only) are how every step connects; an account logged in again uses its own."""

    login_id: UUID
    step: Literal["start", "code", "password"]
    phone: str | None = Field(default=None, max_length=32)
    display_name: str | None = Field(default=None, max_length=200)
    telegram_account_id: UUID | None = None
    api_id: int | None = None
    api_hash_sealed: str | None = None
    code: str | None = Field(default=None, max_length=16)
    password_sealed: str | None = None
    proxy: LoginProxy | None = None
    device: LoginDevice | None = None


class AccountImportSession(Payload):
    """Validate a session someone already has and save it as a new account; answered by
    account.login_progressed (logged_in, or failed with the reason) under the request's
    login_id. The session is sealed; a `.session` file travels base64-encoded before sealing.
    The validation connects through `proxy` as `device` (when given), and the account keeps
    them."""

    login_id: UUID
    format: Literal["telethon_string", "telethon_sqlite", "pyrogram"]
    session_sealed: str
    display_name: str = Field(max_length=200)
    proxy: LoginProxy | None = None
    device: LoginDevice | None = None


LOGIN = Contract(
    Topic.ACCOUNT_COMMANDS,
    MessageType.ACCOUNT_LOGIN,
    1,
    AccountLogin,
    True,
    {
        "login_id": EXAMPLE_LOGIN,
        "step": "start",
        "phone": "+15550100",
        "display_name": "Sales",
        "telegram_account_id": None,
        "api_id": None,
        "api_hash_sealed": None,
        "code": None,
        "password_sealed": None,
        "proxy": {
            "type": "socks5",
            "host": "proxy.example.com",
            "port": 1080,
            "username": "sales",
            "password_sealed": "gAAAAA-sealed-password",
        },
        "device": None,
    },
)
IMPORT_SESSION = Contract(
    Topic.ACCOUNT_COMMANDS,
    MessageType.ACCOUNT_IMPORT_SESSION,
    1,
    AccountImportSession,
    True,
    {
        "login_id": EXAMPLE_LOGIN,
        "format": "telethon_string",
        "session_sealed": "gAAAAA-sealed-session",
        "display_name": "Sales",
        "proxy": None,
        "device": {
            "device_model": "MacBook Pro",
            "system_version": "macOS 14.6.1",
            "app_version": "5.8.3 x64",
            "lang_code": "en",
            "system_lang_code": "en-US",
        },
    },
)


class ConversationSend(Payload):
    """Send the queued answer a person wrote in the inbox (docs/inbox.md) from its account,
    with the account's pacing and health rules: the API recorded it (status queued) and took
    the conversation over in the same transaction. Not answered by an event: the message's
    status (sent, or failed with the reason) is the outcome."""

    telegram_account_id: UUID
    conversation_id: UUID
    message_id: UUID


class ConversationRead(Payload):
    """Send the read receipt (messages.readHistory) for the conversation's messages up to the
    newest one received, through its account. Best effort: a read receipt is not retried."""

    telegram_account_id: UUID
    conversation_id: UUID


SEND_ANSWER = Contract(
    Topic.ACCOUNT_COMMANDS,
    MessageType.CONVERSATION_SEND,
    1,
    ConversationSend,
    True,
    {
        "telegram_account_id": EXAMPLE_ACCOUNT,
        "conversation_id": "8e7d6c5b-4a39-4281-b7c6-d5e4f3a2b1c0",
        "message_id": "1d2c3b4a-5968-4776-8594-a3b2c1d0e9f8",
    },
)
READ = Contract(
    Topic.ACCOUNT_COMMANDS,
    MessageType.CONVERSATION_READ,
    1,
    ConversationRead,
    True,
    {
        "telegram_account_id": EXAMPLE_ACCOUNT,
        "conversation_id": "8e7d6c5b-4a39-4281-b7c6-d5e4f3a2b1c0",
    },
)


class AccountTestSend(Payload):
    """Render the campaign's send step `node_id` for the contact, exactly as the sender would,
    and send it to the account's own Saved Messages (docs/campaigns.md, "Test send"); answered
    by account.test_sent. The account must be the campaign's, connected and healthy; the actor
    must be allowed to edit the campaign and see the contact. Not a message to the contact:
    no execution, message record or statistic changes; the campaign's log records it."""

    telegram_account_id: UUID
    campaign_id: UUID
    node_id: str = Field(min_length=1, max_length=200)
    contact_id: UUID


TEST_SEND = Contract(
    Topic.ACCOUNT_COMMANDS,
    MessageType.ACCOUNT_TEST_SEND,
    1,
    AccountTestSend,
    True,
    {
        "telegram_account_id": EXAMPLE_ACCOUNT,
        "campaign_id": EXAMPLE_CAMPAIGN,
        "node_id": "hello",
        "contact_id": EXAMPLE_CONTACT,
    },
)
AccountCommand = (
    AccountHealthCheck
    | AccountLogin
    | AccountImportSession
    | ConversationSend
    | ConversationRead
    | AccountTestSend
)
CONTRACTS: tuple[Contract[AccountCommand], ...] = (
    CHECK_HEALTH,
    LOGIN,
    IMPORT_SESSION,
    SEND_ANSWER,
    READ,
    TEST_SEND,
)
