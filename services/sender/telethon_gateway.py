"""Telegram through Telethon: one TelegramClient per account, opened on first use.

What TELEGRAM.md asks of it, and where:
- sessions are StringSessions stored encrypted (shared/crypto.py), opened here only;
- flood_sleep_threshold=0, so every FLOOD_WAIT reaches the pacer instead of a silent sleep;
- peers are resolved with ResolveUsernameRequest or ImportContactsRequest, never by passing a
  username or phone as an entity, and their access hashes are kept per account
  (telegram_peers); a stale hash is resolved again once;
- sends go as raw SendMessageRequest with our random_id, so a repeat after a timeout is
  recognised by Telegram (RANDOM_ID_DUPLICATE) and answered from the dialog's history;
- an attachment goes as SendMediaRequest (InputMediaUploadedPhoto, or InputMediaUploadedDocument
  with its type and file name) with the text as caption and the same random_id rule; its bytes
  are uploaded with Telethon's upload_file (upload.saveFilePart / saveBigFilePart) the first
  time an account sends it, and later sends name the InputPhoto / InputDocument Telegram
  returned (kept in this process's memory per account and attachment; a restarted sender
  uploads once more; a reference Telegram refuses as expired is dropped and uploaded again);
- a test send goes to the account's own Saved Messages (InputPeerSelf);
- health is probed with help.getAppConfig (a freeze: freeze_since_date, freeze_until_date,
  freeze_appeal_url) and GetStateRequest, which raises the exact error class; a limited
  account is asked of @SpamBot (/start, its answer read from the dialog), since GetState
  succeeds on a limited account;
- each connected client has a watcher task on `client.disconnected`: a connection Telethon
  could not restore is recorded when it drops (accounts.connection_lost), not at the next
  send; a 401/406 that ended it is recorded as what it is;
- replies (NewMessage) and reads (MessageRead) are written to telegram_updates as they arrive,
  and missed ones are found again by reading recent dialogs (reconcile, the periodic job
  `reconcile_dialogs`);
- a session is used by one process at a time, held by an advisory lock;
- every connect presents the account's stored device identity and goes through its proxy
  (connections.py); a proxy that cannot be reached or refuses is `proxy_unreachable`, a
  Transient (the account is disconnected and retried), not a dead account. A changed proxy or
  device is picked up at the account's next health check, which reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import random
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
from telethon import TelegramClient, errors, events, functions, types
from telethon import version as telethon_version
from telethon.errors.common import AuthKeyNotFound
from telethon.sessions import StringSession

from services.sender import accounts
from services.sender.connections import (
    PROXY_ERRORS,
    ApiCredentials,
    Connection,
    Proxy,
    proxy_failure,
    sender_client_options,
)
from services.sender.gateway import (
    Account,
    AccountDead,
    AccountFrozen,
    AccountLimited,
    ContactPermanent,
    Delivery,
    GatewayError,
    Incoming,
    Media,
    Peer,
    ProxyUnreachable,
    SessionElsewhere,
    Transient,
)
from services.sender.telethon_errors import StalePeer, categorize
from shared.crypto import SessionCipher, SessionKeyError
from shared.db.pool import DbConnection, connect
from shared.db.sql import Queries
from shared.domain.accounts import (
    AccountHealth,
    UnreadableSpamBotAnswer,
    read_freeze,
    read_spambot,
)
from shared.domain.clock import Clock
from shared.domain.devices import DeviceIdentity
from shared.messaging.transaction import transaction
from shared.runtime import Job, Service
from shared.settings import Settings

log = logging.getLogger(__name__)
QUERIES = Queries.load(Path(__file__).with_name("telethon.sql"))

# Where a sent message is looked for after RANDOM_ID_DUPLICATE, and missed replies after ours.
HISTORY_LIMIT = 30
RECONCILE_DAYS = 7
SPAMBOT = "SpamBot"
# How long @SpamBot's answer to /start is waited for, and how often its dialog is read meanwhile.
SPAMBOT_WAIT_S = 15.0
SPAMBOT_POLL_S = 0.25
# How long a reply or read waits for a queued send to the same person to be recorded (a send
# whose answer never comes is failed or retried by then; the update is applied after it anyway).
IN_FLIGHT_WAIT = timedelta(minutes=2)
# How often a sender looks for sessions no sender holds (a sender died), and how many it takes
# at a time: several live senders take turns, so the orphans spread over them.
ADOPT_INTERVAL_S = 15.0
ADOPT_BATCH = 50
# How often a sender looks for sessions that another sender's sends wait for, and how long
# after its own last send from an account it keeps the session anyway.
HAND_OVER_INTERVAL_S = 5.0
HAND_OVER_IDLE = timedelta(seconds=30)
# What Telethon raises for a failed call: RPC errors, a lost connection, a timeout, a proxy's
# refusal (python-socks' own exception, which Telethon lets through).
TELETHON_FAILURES = (errors.RPCError, OSError, AuthKeyNotFound, *PROXY_ERRORS)


def adopt_sessions(telethon: TelethonTelegram, started: datetime) -> Job:
    """The periodic job: every ADOPT_INTERVAL_S, connect the sending Telethon accounts whose
    session no sender holds (their sender died); returns how many this sender took."""
    last = [started]

    async def job(service: Service) -> int:
        now = service.clock.now()
        if (now - last[0]).total_seconds() < ADOPT_INTERVAL_S:
            return 0
        last[0] = now
        return await telethon.adopt()

    return job


def hand_over_sessions(telethon: TelethonTelegram, started: datetime) -> Job:
    """The periodic job: every HAND_OVER_INTERVAL_S, let go of the sessions another sender's
    sends wait for (TelethonTelegram.hand_over); returns how many."""
    last = [started]

    async def job(service: Service) -> int:
        now = service.clock.now()
        if (now - last[0]).total_seconds() < HAND_OVER_INTERVAL_S:
            return 0
        last[0] = now
        return await telethon.hand_over(now)

    return job


def reconcile_dialogs(telethon: TelethonTelegram, started: datetime) -> Job:
    """The periodic job: reconcile the dialogs once every telegram_reconcile_interval_s (the
    first time that long after `started`); returns the replies found."""
    last = [started]

    async def job(service: Service) -> int:
        now = service.clock.now()
        interval = service.settings.telegram_reconcile_interval_s
        if (now - last[0]).total_seconds() < interval:
            return 0
        last[0] = now
        return await telethon.reconcile(now)

    return job


def _seen_on_disconnected(client: TelegramClient) -> None:
    """A failed connect also ends the client's `disconnected` future with the same error (once
    Telethon's receive loop finishes closing, maybe after the connect raised it to the caller
    here); mark that copy seen when it comes, or asyncio logs "Future exception was never
    retrieved" with its traceback when the client is collected."""
    client.disconnected.add_done_callback(_mark_seen)


def _mark_seen(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


@dataclass(frozen=True)
class PushedUpdate:
    account_id: UUID
    kind: str
    peer_user_id: int
    telegram_message_id: int
    body: str
    at: datetime


class TelethonTelegram:
    def __init__(
        self, pool: Callable[[], asyncpg.Pool[Any]], settings: Settings, clock: Clock
    ) -> None:
        self._get_pool = pool
        self._settings = settings
        self._clock = clock
        self._clients: dict[UUID, TelegramClient] = {}
        # How each open client connected (device, proxy): a change reconnects at the next probe.
        self._connections: dict[UUID, Connection] = {}
        self._opening: defaultdict[UUID, asyncio.Lock] = defaultdict(asyncio.Lock)
        # One task per connected client, awaiting its `disconnected`.
        self._watchers: dict[UUID, asyncio.Task[None]] = {}
        self._lock_connection: DbConnection | None = None
        self._lock_guard = asyncio.Lock()
        # Sessions another sender holds that a send here waits for (a want lock is held for
        # each), and when this sender last sent from each account it holds.
        self._wanted: set[UUID] = set()
        self._last_sent: dict[UUID, datetime] = {}
        # Updates whose write failed (the database was away): retried before the next take.
        self._unsaved: list[PushedUpdate] = []
        # Attachments this process uploaded, per account and attachment: the InputPhoto or
        # InputDocument Telegram returned, so the bytes go up once per account (in memory: a
        # restarted sender uploads each attachment again once).
        self._files: dict[tuple[UUID, UUID], types.InputPhoto | types.InputDocument] = {}
        self._uploading: defaultdict[tuple[UUID, UUID], asyncio.Lock] = defaultdict(asyncio.Lock)

    @property
    def _pool(self) -> asyncpg.Pool[Any]:
        return self._get_pool()

    # -- the gateway -------------------------------------------------------------------------

    async def send(
        self,
        account: Account,
        peer: Peer,
        text: str,
        random_id: int,
        now: datetime,
        media: Media | None = None,
    ) -> Delivery:
        """messages.sendMessage, or with `media` messages.sendMedia with the text as caption:
        the file is uploaded (upload.saveFilePart, as Telethon's upload_file does) the first
        time this account sends it, and named by the reference Telegram returned after that."""
        try:
            client = await self._client(account.id)
        except SessionElsewhere:
            await self._want(account.id)  # the holder hands it over when it does not send
            raise
        self._last_sent[account.id] = now
        if media is None:
            return await self._send(client, account, peer, text, random_id, now, None)
        # One media send of an attachment per account at a time, so that sends racing each
        # other upload it once: the first keeps the reference, the others name it.
        async with self._uploading[(account.id, media.id)]:
            return await self._send(client, account, peer, text, random_id, now, media)

    async def _send(
        self,
        client: TelegramClient,
        account: Account,
        peer: Peer,
        text: str,
        random_id: int,
        now: datetime,
        media: Media | None,
    ) -> Delivery:
        stale_peer_retried = reference_retried = False
        while True:
            input_peer = await self._input_peer(client, account, peer, now)
            request: Any
            if media is None:
                request = functions.messages.SendMessageRequest(
                    peer=input_peer, message=text, random_id=random_id, no_webpage=True
                )
            else:
                request = functions.messages.SendMediaRequest(
                    peer=input_peer,
                    media=await self._input_media(client, account, media),
                    message=text,
                    random_id=random_id,
                )
            try:
                result = await client(request)
            except errors.RandomIdDuplicateError:
                return await self._first_delivery(client, account, input_peer, text, now, media)
            except (errors.FileReferenceExpiredError, errors.MediaInvalidError) as exc:
                if media is None or reference_retried:
                    raise await self._failure(account.id, exc) from exc
                # The kept reference no longer works: upload the bytes again, once.
                self._files.pop((account.id, media.id), None)
                reference_retried = True
                continue
            except TELETHON_FAILURES as exc:
                failure = await self._failure(account.id, exc)
                if isinstance(failure, StalePeer) and not stale_peer_retried:
                    async with self._pool.acquire() as connection:
                        await connection.execute(
                            QUERIES["forget_peer"], account.id, peer.contact_id
                        )
                    stale_peer_retried = True
                    continue
                raise failure from exc
            if media is not None:
                self._keep_file(account.id, media, result)
            return _delivery(result, random_id, now)

    async def _input_media(self, client: TelegramClient, account: Account, media: Media) -> Any:
        """The media of a sendMedia: the kept reference to this account's earlier upload of the
        attachment, else the bytes uploaded now (the caller holds the attachment's lock)."""
        kept = self._files.get((account.id, media.id))
        if isinstance(kept, types.InputPhoto):
            return types.InputMediaPhoto(id=kept)
        if isinstance(kept, types.InputDocument):
            return types.InputMediaDocument(id=kept)
        try:
            uploaded = await client.upload_file(media.data, file_name=media.filename)
        except TELETHON_FAILURES as exc:
            raise await self._failure(account.id, exc) from exc
        if media.kind == "photo":
            return types.InputMediaUploadedPhoto(file=uploaded)
        return types.InputMediaUploadedDocument(
            file=uploaded,
            mime_type=media.content_type,
            attributes=[types.DocumentAttributeFilename(media.filename)],
            force_file=True,
        )

    def _keep_file(self, account_id: UUID, media: Media, result: Any) -> None:
        """Keep the photo or document Telegram made of our upload, to name it next time."""
        for update in getattr(result, "updates", []):
            message = getattr(update, "message", None)
            shown = getattr(message, "media", None)
            if isinstance(shown, types.MessageMediaPhoto) and isinstance(shown.photo, types.Photo):
                photo = shown.photo
                kept: Any = types.InputPhoto(photo.id, photo.access_hash, photo.file_reference)
            elif isinstance(shown, types.MessageMediaDocument) and isinstance(
                shown.document, types.Document
            ):
                document = shown.document
                kept = types.InputDocument(
                    document.id, document.access_hash, document.file_reference
                )
            else:
                continue
            self._files[(account_id, media.id)] = kept
            return

    async def read_history(self, account: Account, peer: Peer, now: datetime) -> None:
        """messages.readHistory up to the newest message (max_id 0: every message)."""
        client = await self._client(account.id)
        input_peer = await self._input_peer(client, account, peer, now)
        try:
            await client(functions.messages.ReadHistoryRequest(peer=input_peer, max_id=0))
        except TELETHON_FAILURES as exc:
            raise await self._failure(account.id, exc) from exc

    async def probe(self, account: Account, now: datetime, *, ask_spambot: bool = False) -> None:
        client = await self._client(account.id, reread=True)
        try:
            config = await client(functions.help.GetAppConfigRequest(hash=0))
            await client(functions.updates.GetStateRequest())
        except TELETHON_FAILURES as exc:
            raise await self._failure(account.id, exc) from exc
        values = _json(config.config) if isinstance(config, types.help.AppConfig) else {}
        freeze = read_freeze(values if isinstance(values, dict) else {})
        if freeze is not None and freeze.frozen_at(now):
            until = f" until {freeze.until.isoformat()}" if freeze.until else ""
            appeal = f"; appeal: {freeze.appeal_url}" if freeze.appeal_url else ""
            raise AccountFrozen(
                f"frozen by Telegram{until}{appeal}", freeze.until, freeze.appeal_url
            )
        if ask_spambot:
            answer = await self._ask_spambot(client, account, now)
            try:
                verdict = read_spambot(answer)
            except UnreadableSpamBotAnswer as exc:
                raise Transient(str(exc)) from exc  # the limit stands until it is understood
            if verdict.limited_at(now):
                until = f" until {verdict.until.isoformat()}" if verdict.until else ""
                raise AccountLimited(f"@SpamBot: limited{until}", verdict.until)

    async def _ask_spambot(self, client: TelegramClient, account: Account, now: datetime) -> str:
        """Send @SpamBot /start and return its answer, read from the dialog (the answer is an
        ordinary incoming message, arriving after ours)."""
        try:
            resolved = await client(functions.contacts.ResolveUsernameRequest(SPAMBOT))
            bot = _user(resolved.users, resolved.peer.user_id, Peer(SPAMBOT, account.id))
            peer = types.InputPeerUser(bot.id, bot.access_hash or 0)
            sent = await client(
                functions.messages.SendMessageRequest(
                    peer=peer, message="/start", random_id=random.getrandbits(63)
                )
            )
            after = getattr(sent, "id", 0) or 0  # answers come after our /start
            loop = asyncio.get_running_loop()
            deadline = loop.time() + SPAMBOT_WAIT_S
            while True:
                history = await client(_history(peer, min_id=after))
                answers = [m for m in history.messages
                           if isinstance(m, types.Message) and not m.out and m.message]  # fmt: skip
                if answers:
                    return str(min(answers, key=lambda m: m.id).message)
                if loop.time() >= deadline:
                    raise Transient(f"@SpamBot did not answer /start within {SPAMBOT_WAIT_S:g} s")
                await asyncio.sleep(SPAMBOT_POLL_S)
        except TELETHON_FAILURES as exc:
            raise await self._failure(account.id, exc) from exc

    async def updates(self, connection: DbConnection, now: datetime) -> list[Incoming]:
        await self._save_unsaved()
        taken = await connection.fetch(QUERIES["take_updates"], now)
        found: list[Incoming] = []
        waiting: set[tuple[UUID, int]] = set()
        for row in sorted(taken, key=lambda r: r["id"]):
            dialog = (row["telegram_account_id"], row["peer_user_id"])
            if dialog in waiting or await connection.fetchval(
                QUERIES["send_in_flight"], *dialog, now - IN_FLIGHT_WAIT
            ):
                # Our send's record is not written yet: this update (and the dialog's later
                # ones, to keep their order) is taken again next round.
                waiting.add(dialog)
                await connection.execute(QUERIES["put_back_update"], row["id"])
                continue
            random_id = await connection.fetchval(
                QUERIES["answered_message"],
                row["telegram_account_id"],
                row["peer_user_id"],
                row["telegram_message_id"],
            )
            if random_id is None:
                continue  # someone we never wrote to: not a campaign's business
            found.append(
                Incoming(
                    row["kind"],
                    row["telegram_account_id"],
                    random_id,
                    row["received_at"],
                    row["body"],
                )
            )
        return found

    async def reconcile(self, now: datetime) -> int:
        """Read the recent dialogs still waiting for an answer; record replies not yet seen
        (updates missed while disconnected arrive late or never). Returns replies found."""
        async with self._pool.acquire() as connection:
            accounts = await connection.fetch(QUERIES["accounts_to_reconcile"])
        found = 0
        for account in accounts:
            try:
                found += await self._reconcile_account(account["id"], now)
            except GatewayError as failure:
                # The account's health is the probe's to judge; the next pass tries again.
                log.warning("reconciling account %s: %s", account["id"], failure.reason)
        return found

    async def adopt(self) -> int:
        """Connect up to ADOPT_BATCH sending accounts that no sender holds (a sender that died
        released their advisory locks with its connection), picked at random so that several
        senders share them; returns how many this sender now holds."""
        if self._settings.telethon_ready is not None:
            return 0
        async with self._pool.acquire() as connection:
            rows = await connection.fetch(QUERIES["orphaned_sessions"], ADOPT_BATCH)
        adopted = 0
        for row in rows:
            try:
                await self._client(row["id"])
            except GatewayError as failure:
                # Another sender was quicker, or the account has a problem its check will find.
                log.info("adopting account %s: %s", row["id"], failure.reason)
                continue
            adopted += 1
        if adopted:
            log.info("adopted %d account session(s) no sender held", adopted)
        return adopted

    async def hand_over(self, now: datetime) -> int:
        """Let go of the sessions that a send of another sender waits for, unless this sender
        sent from the account within HAND_OVER_IDLE (then the other is the one that should not
        have it: its turn comes when this one stops sending). Sends follow the account's
        partition, so after a rebalance the session follows its new owner; returns how many
        were let go."""
        held = list(self._clients)
        if not held:
            return 0
        async with self._lock_guard:
            if self._lock_connection is None or self._lock_connection.is_closed():
                return 0
            # On the lock connection: pg_backend_pid() is the holder's.
            rows = await self._lock_connection.fetch(QUERIES["wanted_sessions"], held)
        released = 0
        for row in rows:
            account_id = row["id"]
            last = self._last_sent.get(account_id)
            if last is not None and now - last < HAND_OVER_IDLE:
                continue
            async with self._opening[account_id]:
                if account_id in self._clients:
                    await self._close(account_id)
                    released += 1
        if released:
            log.info("handed over %d account session(s) another sender's sends wait for", released)
        return released

    async def _want(self, account_id: UUID) -> None:
        async with self._lock_guard:
            if self._lock_connection is None or self._lock_connection.is_closed():
                return
            if account_id not in self._wanted:
                await self._lock_connection.fetchval(QUERIES["want_session"], account_id)
                self._wanted.add(account_id)

    async def close(self) -> None:
        for account_id in list(self._clients):
            await self._close(account_id)
        if self._lock_connection is not None:
            await self._lock_connection.close()
            self._lock_connection = None

    # -- sessions ----------------------------------------------------------------------------

    async def _client(self, account_id: UUID, *, reread: bool = False) -> TelegramClient:
        """The account's connected client, opened if needed. `reread`: read the account's
        device and proxy again and reconnect if they changed since the client connected."""
        async with self._opening[account_id]:
            client = self._clients.get(account_id)
            session: str | None = None
            if client is not None and client.is_connected():
                if not reread:
                    return client
                session, connection = await self._session(account_id)
                if connection == self._connections.get(account_id):
                    return client
                log.info("account %s: its device or proxy changed; reconnecting", account_id)
            if client is not None:  # the update loop dropped it (a 401 inside it, say)
                await self._close(account_id)
            if session is None:
                session, connection = await self._session(account_id)
            await self._hold(account_id)
            client = TelegramClient(StringSession(session), **sender_client_options(connection))
            client.add_event_handler(
                partial(self._on_reply, account_id),
                events.NewMessage(incoming=True, func=lambda event: event.is_private),
            )
            client.add_event_handler(
                partial(self._on_read, account_id), events.MessageRead(inbox=False)
            )
            try:
                await client.connect()
            except TELETHON_FAILURES as exc:
                _seen_on_disconnected(client)
                await self._release(account_id)
                address = (client.session.server_address, client.session.port)
                why = await proxy_failure(connection.proxy, *address, exc)
                if why is not None:
                    raise ProxyUnreachable(why) from exc
                raise categorize(exc) from exc
            self._clients[account_id] = client
            self._connections[account_id] = connection
            self._watchers[account_id] = asyncio.create_task(self._watch(account_id, client))
            return client

    async def _watch(self, account_id: UUID, client: TelegramClient) -> None:
        """Wait for the client's connection to end. Telethon reconnects a dropped connection
        once by itself; when that fails (or a 401/406 ends it inside its update loop) the
        `disconnected` future completes, and the account is recorded as it is now: a sending
        account disconnected (its check reconnects on the backoff), a dead one dead."""
        error: BaseException | None = None
        try:
            await client.disconnected
        except Exception as exc:  # how Telethon says why the connection ended
            error = exc
        if self._clients.get(account_id) is not client:
            return  # closed here, on purpose
        self._watchers.pop(account_id, None)
        async with self._opening[account_id]:
            if self._clients.get(account_id) is client:
                await self._close(account_id)
        failure = (
            categorize(error)
            if error is not None
            else Transient("the connection ended and Telethon could not restore it")
        )
        log.warning("account %s: its connection to Telegram dropped: %s", account_id, failure)
        now = self._clock.now()
        try:
            async with transaction(self._pool, self._clock) as tx:
                if isinstance(failure, AccountDead):
                    entered = await accounts.change_health(
                        tx.connection, tx.outbox, account_id, AccountHealth(failure.kind),
                        failure.reason, now,
                    )  # fmt: skip
                else:
                    entered = await accounts.connection_lost(
                        tx.connection, tx.outbox, account_id,
                        f"connection lost: {failure.reason}", now,
                    )  # fmt: skip
        except Exception:
            # Recorded by the account's next check instead, which meets the same failure.
            log.exception("account %s: recording its dropped connection failed", account_id)
            return
        accounts.count_transitions([entered])

    async def _session(self, account_id: UUID) -> tuple[str, Connection]:
        """The account's session (opened) and how it connects."""
        if (why := self._settings.telethon_ready) is not None:
            raise Transient(f"Telethon accounts are {why}")
        async with self._pool.acquire() as connection:
            row = await connection.fetchrow(QUERIES["session"], account_id)
        if row is None or row["session_kind"] != "telethon" or not row["session_string"]:
            raise AccountDead("the account has no Telethon session; log in again", "auth_lost")
        settings = self._settings
        assert settings.session_key is not None
        assert settings.telegram_api_id is not None
        assert settings.telegram_api_hash is not None
        cipher = SessionCipher(settings.session_key.get_secret_value())
        try:
            session = cipher.open(row["session_string"])
        except SessionKeyError as exc:
            raise AccountDead(str(exc), "auth_lost") from exc
        proxy = None
        if row["proxy_type"] is not None:
            try:
                secret = None if row["proxy_secret"] is None else cipher.open(row["proxy_secret"])
            except SessionKeyError as exc:
                # The account is fine; its proxy must be set again.
                raise ProxyUnreachable(f"proxy_unreachable: its password: {exc}") from exc
            proxy = Proxy(
                row["proxy_type"],
                row["proxy_host"],
                row["proxy_port"],
                row["proxy_username"],
                secret,
            )
        if row["device_model"] is None:
            device = telethon_default_device()
            async with self._pool.acquire() as connection:
                await connection.execute(
                    QUERIES["adopt_device"], account_id, device.device_model,
                    device.system_version, device.app_version, device.lang_code,
                    device.system_lang_code,
                )  # fmt: skip
        else:
            device = DeviceIdentity(
                row["device_model"],
                row["system_version"],
                row["app_version"],
                row["lang_code"],
                row["system_lang_code"],
            )
        api = ApiCredentials(
            settings.telegram_api_id, settings.telegram_api_hash.get_secret_value()
        )
        return session, Connection(api, device, proxy)

    async def _hold(self, account_id: UUID) -> None:
        async with self._lock_guard:
            if self._lock_connection is None or self._lock_connection.is_closed():
                self._lock_connection = await connect(self._settings.dsn)
                self._wanted.clear()  # went with the old connection
            held = await self._lock_connection.fetchval(QUERIES["hold_session"], account_id)
            if held and account_id in self._wanted:
                self._wanted.discard(account_id)
                await self._lock_connection.fetchval(QUERIES["unwant_session"], account_id)
        if not held:
            raise SessionElsewhere(
                "another sender holds this account's session (a session used from two "
                "places at once is killed by Telegram)"
            )

    async def _release(self, account_id: UUID) -> None:
        async with self._lock_guard:
            if self._lock_connection is not None and not self._lock_connection.is_closed():
                await self._lock_connection.fetchval(QUERIES["release_session"], account_id)

    async def _close(self, account_id: UUID) -> None:
        self._connections.pop(account_id, None)
        self._last_sent.pop(account_id, None)
        watcher = self._watchers.pop(account_id, None)
        if watcher is not None:
            watcher.cancel()
        client = self._clients.pop(account_id, None)
        if client is not None:
            await client.disconnect()
        await self._release(account_id)

    async def _failure(self, account_id: UUID, exc: BaseException) -> GatewayError:
        failure = categorize(exc)
        if isinstance(failure, AccountDead):
            await self._close(account_id)  # the session is useless now; don't keep it open
        return failure

    # -- peers -------------------------------------------------------------------------------

    async def _input_peer(
        self, client: TelegramClient, account: Account, peer: Peer, now: datetime
    ) -> types.InputPeerUser | types.InputPeerSelf:
        if peer.kind == "self":
            return types.InputPeerSelf()  # Saved Messages: nothing to resolve
        async with self._pool.acquire() as connection:
            known = await connection.fetchrow(QUERIES["peer"], account.id, peer.contact_id)
        if known is not None and known["peer_key"] == peer.key:
            return types.InputPeerUser(known["user_id"], known["access_hash"])
        try:
            user = await self._resolve(client, peer)
        except TELETHON_FAILURES as exc:
            raise await self._failure(account.id, exc) from exc
        access_hash = user.access_hash or 0
        async with self._pool.acquire() as connection:
            await connection.execute(
                QUERIES["save_peer"], account.id, peer.contact_id, peer.key, user.id,
                access_hash, now,
            )  # fmt: skip
        return types.InputPeerUser(user.id, access_hash)

    async def _resolve(self, client: TelegramClient, peer: Peer) -> types.User:
        if peer.kind == "username":
            resolved = await client(functions.contacts.ResolveUsernameRequest(peer.key.lstrip("@")))
            if not isinstance(resolved.peer, types.PeerUser):
                raise ContactPermanent(f"@{peer.key} is a group or channel, not a person")
            return _user(resolved.users, resolved.peer.user_id, peer)
        if peer.kind == "phone":
            imported = await client(
                functions.contacts.ImportContactsRequest(
                    [types.InputPhoneContact(0, peer.key, "Dripline contact", "")]
                )
            )
            if imported.retry_contacts:
                raise Transient("Telegram asks to import this phone number again later")
            if not imported.imported:
                raise ContactPermanent("no Telegram account uses this phone number")
            return _user(imported.users, imported.imported[0].user_id, peer)
        raise ContactPermanent(
            "only a Telegram user id is known for this contact, and a user id alone cannot be "
            "messaged without an access hash; add the contact's username or phone"
        )

    async def _first_delivery(
        self,
        client: TelegramClient,
        account: Account,
        input_peer: types.InputPeerUser | types.InputPeerSelf,
        text: str,
        now: datetime,
        media: Media | None = None,
    ) -> Delivery:
        """This random_id was sent before (a timed-out send that did go through): find that
        message in the dialog rather than send it again (a media send: the message with media
        and this caption)."""
        try:
            history = await client(_history(input_peer, min_id=0))
        except TELETHON_FAILURES as exc:
            raise await self._failure(account.id, exc) from exc
        for message in history.messages:
            if (
                isinstance(message, types.Message)
                and message.out
                and message.message == text
                and (message.media is not None) == (media is not None)
            ):
                return Delivery(message.id, message.date, duplicate=True)
        log.warning("account %s: a duplicate send not found in the dialog's history", account.id)
        return Delivery(None, now, duplicate=True)

    # -- replies and reads -------------------------------------------------------------------

    async def _on_reply(self, account_id: UUID, event: events.NewMessage.Event) -> None:
        message = event.message
        await self._record(
            PushedUpdate(
                account_id,
                "reply",
                event.chat_id,
                message.id,
                message.message or "",
                message.date,
            )
        )

    async def _on_read(self, account_id: UUID, event: events.MessageRead.Event) -> None:
        if event.chat_id is None or event.chat_id < 0:
            return  # a group or channel: campaigns write to people only
        await self._record(
            PushedUpdate(account_id, "read", event.chat_id, event.max_id, "", self._clock.now())
        )

    async def _record(self, update: PushedUpdate) -> None:
        self._unsaved.append(update)
        try:
            await self._save_unsaved()
        except Exception:
            # Kept in memory and written before the next take of updates; the dialog
            # reconciliation finds a reply again should this process die first.
            log.exception("could not record a Telegram update; will retry")

    async def _save_unsaved(self) -> None:
        if not self._unsaved:
            return
        pending, self._unsaved = self._unsaved, []
        try:
            async with self._pool.acquire() as connection:
                await connection.executemany(
                    QUERIES["record_update"],
                    [
                        (u.account_id, u.kind, u.peer_user_id, u.telegram_message_id, u.body, u.at)
                        for u in pending
                    ],
                )
        except BaseException:
            self._unsaved = pending + self._unsaved
            raise

    async def _reconcile_account(self, account_id: UUID, now: datetime) -> int:
        since = now - timedelta(days=RECONCILE_DAYS)
        async with self._pool.acquire() as connection:
            dialogs = await connection.fetch(QUERIES["dialogs_to_reconcile"], account_id, since)
        if not dialogs:
            return 0
        client = await self._client(account_id)
        replies: list[PushedUpdate] = []
        for dialog in dialogs:
            input_peer = types.InputPeerUser(dialog["user_id"], dialog["access_hash"])
            try:
                history = await client(_history(input_peer, min_id=dialog["last_sent_id"]))
            except TELETHON_FAILURES as exc:
                raise await self._failure(account_id, exc) from exc
            replies.extend(
                PushedUpdate(
                    account_id,
                    "reply",
                    dialog["user_id"],
                    message.id,
                    message.message or "",
                    message.date,
                )
                for message in history.messages
                if isinstance(message, types.Message) and not message.out
            )
        self._unsaved.extend(replies)
        await self._save_unsaved()
        return len(replies)


def telethon_default_device() -> DeviceIdentity:
    """What Telethon presents when given no device (TelegramBaseClient.__init__): what the
    accounts connected before device identities were stored have shown Telegram so far."""
    system = platform.uname()
    if system.machine in ("x86_64", "AMD64"):
        model = "PC 64bit"
    elif system.machine in ("i386", "i686", "x86"):
        model = "PC 32bit"
    else:
        model = system.machine
    return DeviceIdentity(
        device_model=model or "Unknown",
        system_version=re.sub(r"-.+", "", system.release) or "1.0",
        app_version=telethon_version.__version__,
        lang_code="en",
        system_lang_code="en",
    )


def _history(peer: types.InputPeerUser | types.InputPeerSelf, *, min_id: int) -> Any:
    return functions.messages.GetHistoryRequest(
        peer=peer, offset_id=0, offset_date=None, add_offset=0, limit=HISTORY_LIMIT,
        max_id=0, min_id=min_id, hash=0,
    )  # fmt: skip


def _json(value: Any) -> Any:
    """help.getAppConfig's TL JSON as Python values."""
    if isinstance(value, types.JsonObject):
        return {item.key: _json(item.value) for item in value.value}
    if isinstance(value, types.JsonArray):
        return [_json(item) for item in value.value]
    if isinstance(value, types.JsonNull):
        return None
    return getattr(value, "value", None)


def _user(users: list[Any], user_id: int, peer: Peer) -> types.User:
    for user in users:
        if isinstance(user, types.User) and user.id == user_id:
            return user
    raise Transient(f"Telegram resolved {peer.key} without returning its user")


def _delivery(result: Any, random_id: int, now: datetime) -> Delivery:
    """The message id Telegram gave our message: UpdateShortSentMessage carries it, a full
    Updates maps it from our random_id (UpdateMessageID)."""
    if isinstance(result, types.UpdateShortSentMessage):
        return Delivery(result.id, result.date or now)
    updates = getattr(result, "updates", [])
    for update in updates:
        if isinstance(update, types.UpdateMessageID) and update.random_id == random_id:
            sent_at = now
            for other in updates:
                if (
                    isinstance(other, types.UpdateNewMessage)
                    and getattr(other.message, "id", None) == update.id
                ):
                    sent_at = other.message.date or now
            return Delivery(update.id, sent_at)
    # Accepted without saying which message it became: the next attempt sends the same
    # random_id, which Telegram recognises as a duplicate and we look up.
    raise Transient(f"Telegram's answer ({type(result).__name__}) carried no message id")
