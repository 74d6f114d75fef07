"""The Logs tab at a million entries, through the real api.

    .venv/bin/python -m bench.logs [--rows 1000000] [--repeat 30]

It starts its own embedded PostgreSQL and Tansu and seeds, set-based, one campaign with `rows`
execution_logs entries (20 per execution, one execution per contact, varied names and texts),
plus a quarter as many again spread over four other campaigns. Then, through HTTP:
- search by contact name and by message text: the first page's p50/p99 over `repeat` requests,
  and every match exported (JSONL, with the search) and counted against a direct COUNT(*);
- filtered pages: the first page, and a page 10,000 entries deep (by cursor);
- the full export in CSV and JSONL: time, bytes, rows against the database's count, and the
  api's peak memory (VmHWM) before and after, which should not grow with the export.
And, in SQL, what the search index costs the writers: 100,000 entries inserted with and without
it (each rolled back).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any
from uuid import UUID

import httpx

from bench.infra import embedded
from bench.report import Figure, record
from dripline.admin import create_user
from dripline.infra import free_port
from dripline.processes import ServiceProcess
from shared.db.campaign_filter import like_pattern
from shared.db.pool import connect
from shared.settings import Settings

FIRST = """Olivia Liam Emma Noah Amelia Oliver Sophia Elijah Isabella Mateo Mia Lucas Charlotte
Levi Ava Ezra Luna Asher Harper Leo Evelyn James Gianna Luca Aurora Henry Ellie Hudson Sofia
Ethan Camila Muhammad Aria Maverick Scarlett Elias Violet Grayson Nora Kai Hazel Theo Layla
Aiden Chloe Jack Penelope Sebastian Lily Benjamin Riley Daniel Zoey Michael Stella Jackson
Nova Alexander Ivy Owen Emilia William Isla Samuel Willow Ayaan Paisley Wei Yuki Hiroshi Mei
Priya Arjun Ananya Rohan Fatima Omar Aisha Yusuf Leila Karim Ingrid Lars Astrid Nils Zofia
Jakub Katarzyna Piotr Dmitri Olga Sergei Anastasia Chiara Giorgio Lucia Matteo""".split()  # noqa: SIM905
LAST = """Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez
Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White
Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen
Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Kowalski
Nowak Wisniewski Wojcik Kaminski Lewandowski Zielinski Szymanski Muller Schmidt Schneider
Fischer Weber Meyer Wagner Becker Schulz Hoffmann Rossi Russo Ferrari Esposito Bianchi Romano
Colombo Ricci Marino Greco Bruno Gallo Conti DeLuca Costa Giordano Mancini Rizzo Lombardi
Moretti Tanaka Suzuki Takahashi Watanabe Ito Yamamoto Nakamura Kobayashi Kato Yoshida Yamada
Sasaki Yamaguchi Matsumoto Inoue Kimura Hayashi Shimizu Yamazaki Mori Abe Ikeda Hashimoto
Ivanov Smirnov Kuznetsov Popov Vasiliev Petrov Sokolov Mikhailov Novikov Fedorov Morozov
Volkov Alekseev Lebedev Semenov Egorov Pavlov Kozlov Stepanov Nikolaev Patel Sharma Singh
Kumar Gupta Khan Ali Hussain Ahmed Rahman Chowdhury Haddad Nasser Lindqvist Johansson
Andersson Karlsson Nilsson Eriksson Larsson Olsen Hansen Jensen""".split()  # noqa: SIM905
SENDS = [
    "Hi {first}, quick question about your team's onboarding process",
    "Hello {first}! We are hosting a free webinar on outbound automation next Tuesday",
    "{first}, your trial of Dripline Pro ends in 3 days, want an extension?",
    "Hey {first}, following up on my last message about the partnership",
    "Hi {first}, we just shipped scheduled campaigns and drip batches",
    "Good morning {first}, can I share a short case study from a fintech customer?",
    "{first}, our spring pricing update: 20% off annual plans until Friday",
    "Hi {first}, are you the right person to talk to about growth tooling?",
    "Hello {first}, thanks for signing up! Here is your getting started guide",
    "{first}, would a 15 minute demo this week work for you?",
    "Hi {first}, I noticed you attended our meetup in Berlin last month",
    "Hey {first}, last chance to register for the product roadshow",
    "Hi {first}, we would love your feedback on the new dashboard",
    "{first}, a reminder that your invoice for March is ready",
    "Hello {first}, we are expanding to your region and opening a local office",
    "Hi {first}, here is the recording of yesterday's webinar as promised",
    "{first}, can we schedule a call to discuss the integration with your CRM?",
    "Hey {first}, our support team is now available on weekends",
    "Hi {first}, congratulations on the funding round! Happy to help you scale outreach",
    "{first}, just checking whether my previous message reached you",
]
REPLIES = [
    "Thanks, sounds good",
    "Not interested, please remove me from your list",
    "Can you send me the pricing details?",
    "Call me next week, I am travelling",
    "Who gave you my number?",
    "Yes, Thursday afternoon works for me",
    "Please talk to my colleague in procurement",
    "Interesting, what integrations do you support?",
    "Stop",
    "Already using a competitor, maybe next year",
    "Send the case study please",
    "Is there a discount for nonprofits?",
]
FAILURES = [
    "PeerFloodError: too many requests to new peers",
    "UserPrivacyRestrictedError: the user's privacy settings forbid messages",
    "the contact's account was deleted",
    "Telegram account banned: USER_DEACTIVATED_BAN",
]
# The 20 steps of an execution: (event, node_type, node_id); messages are chosen below.
STEPS = [
    ("node_executed", "ab_split", "split"),
    ("message_sent", "send_message", "intro"),
    ("delivery_confirmed", "send_message", "intro"),
    ("node_executed", "wait_for_reply", "wait1"),
    ("reply_received", "wait_for_reply", "wait1"),
    ("node_executed", "condition", "replied1"),
    ("node_executed", "add_tag", "tag_warm"),
    ("message_sent", "send_message", "followup"),
    ("delivery_confirmed", "send_message", "followup"),
    ("node_executed", "delay", "pause"),
    ("message_sent", "send_message", "offer"),
    ("delivery_confirmed", "send_message", "offer"),
    ("node_executed", "wait_for_reply", "wait2"),
    ("reply_received", "wait_for_reply", "wait2"),
    ("node_executed", "condition", "replied2"),
    ("node_executed", "remove_tag", "untag"),
    ("message_sent", "send_message", "closing"),
    ("delivery_confirmed", "send_message", "closing"),
    ("node_executed", "end", "done"),
    ("node_executed", "add_tag", "tag_done"),
]

CONTACTS = """
INSERT INTO contacts (owner_user_id, telegram_username, first_name, last_name)
SELECT $1,
       lower(f.name) || '_' || lower(left(l.name, 4)) || n,
       CASE WHEN n % 50 = 0 THEN NULL ELSE f.name END,
       CASE WHEN n % 10 = 0 THEN NULL ELSE l.name END
FROM generate_series(1, $2) AS n
CROSS JOIN LATERAL (SELECT ($3::text[])[1 + n % cardinality($3::text[])] AS name) AS f
CROSS JOIN LATERAL (SELECT ($4::text[])[1 + (n * 7 + n / 97) % cardinality($4::text[])]
                    AS name) AS l
"""
EXECUTIONS = """
INSERT INTO executions (campaign_id, contact_id, status, variant)
SELECT $1, c.id, 'completed', CASE WHEN row_number() OVER () % 2 = 0 THEN 'A' ELSE 'B' END
FROM (SELECT id FROM contacts WHERE owner_user_id = $2 ORDER BY id LIMIT $3) AS c
"""
# Every entry of the campaign's executions; texts are drawn by a hash of (execution, step), and
# one execution in 33 fails at its end node (s.j counts from 1).
LOGS = """
INSERT INTO execution_logs (campaign_id, execution_id, contact_id, contact_text, node_id,
                            node_type, event, status, message, details, created_at)
SELECT e.campaign_id, e.id, e.contact_id,
       log_contact_text(c.first_name, c.last_name, c.telegram_username),
       s.node_id, s.node_type,
       CASE WHEN s.j = 19 AND h % 33 = 0 THEN 'execution_failed' ELSE s.event END,
       CASE WHEN s.j = 19 AND h % 33 = 0 THEN 'failed' ELSE 'ok' END,
       CASE
           WHEN s.j = 19 AND h % 33 = 0 THEN ($6::text[])[1 + h % cardinality($6::text[])]
           WHEN s.event = 'message_sent' THEN
               replace(($4::text[])[1 + h % cardinality($4::text[])], '{first}',
                       coalesce(c.first_name, 'there'))
           WHEN s.event = 'reply_received' THEN ($5::text[])[1 + h % cardinality($5::text[])]
           WHEN s.event = 'delivery_confirmed' THEN CASE WHEN h % 4 = 0 THEN 'reply' ELSE 'read' END
           WHEN s.node_type = 'ab_split' THEN 'variant ' || e.variant
           WHEN s.node_type = 'condition' THEN CASE WHEN h % 3 = 0 THEN 'true' ELSE 'false' END
           WHEN s.node_type = 'delay' THEN 'wait 86400s'
           WHEN s.node_type IN ('add_tag', 'remove_tag') THEN 'lead'
           WHEN s.node_type = 'wait_for_reply' THEN 'waiting for a reply'
           ELSE 'end'
       END,
       '{}'::jsonb,
       $2::timestamptz + e.n * interval '30 s' + s.j * interval '7 min'
FROM (SELECT x.*, row_number() OVER (ORDER BY x.id) AS n FROM executions x
      WHERE x.campaign_id = $1) AS e
JOIN contacts c ON c.id = e.contact_id
CROSS JOIN LATERAL unnest($3::text[], $7::text[], $8::text[])
     WITH ORDINALITY AS s (event, node_type, node_id, j)
CROSS JOIN LATERAL (SELECT abs(hashtext(e.id::text || s.j)) AS h) AS hashed
"""
# The independent reading of a search: the contact's fields as they are now, and the text.
COUNT = """
SELECT count(*) FROM execution_logs l
LEFT JOIN contacts c ON c.id = l.contact_id
WHERE l.campaign_id = $1
  AND (concat_ws(' ', c.first_name, c.last_name, '@' || c.telegram_username) ILIKE $2
       OR l.message ILIKE $2)
"""
SEARCH_PLAN = """
EXPLAIN SELECT id FROM execution_logs l
WHERE l.campaign_id = $1
  AND (coalesce(l.contact_text, '') || E'\\n' || coalesce(l.message, '')) ILIKE $2
ORDER BY l.created_at DESC, l.id DESC LIMIT 51
"""
SEARCHES = [
    ("contact name", "Kowalski"),
    ("contact name", "olivia kowal"),
    ("message text", "webinar"),
    ("message text", "call me next week"),
    ("message text", "pricing"),
    ("common text", "thanks"),
]
FILTERS: list[tuple[str, dict[str, Any]]] = [
    ("node_type=condition", {"node_type": "condition"}),
    ("status=failed", {"status": "failed"}),
    ("event=reply_received", {"event": "reply_received"}),
    ("event=message_sent&search=webinar", {"event": "message_sent", "search": "webinar"}),
]


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def vm_kib(process: ServiceProcess, field: str) -> int:
    assert process.process is not None
    with open(f"/proc/{process.process.pid}/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc status")


async def seed(connection: Any, user_id: UUID, rows: int) -> tuple[UUID, float]:
    executions = rows // len(STEPS)
    started = time.perf_counter()
    await connection.execute(CONTACTS, user_id, executions, FIRST, LAST)
    campaigns = []
    for name, size in [("Target", executions)] + [
        (f"Noise {i}", executions // 16) for i in range(4)
    ]:
        campaign = await connection.fetchval(
            "INSERT INTO campaigns (created_by, name) VALUES ($1, $2) RETURNING id", user_id, name
        )
        await connection.execute(EXECUTIONS, campaign, user_id, size)
        campaigns.append(campaign)
    # A bulk load: the secondary indexes are dropped and built again afterwards, exactly as the
    # migrations define them (definitions and statistics targets read back from the catalog).
    indexes = await connection.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'execution_logs'"
        " AND indexname <> 'execution_logs_pkey'"
    )
    targets = await connection.fetch(
        "SELECT c.relname, a.attnum, a.attstattarget FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid"
        " JOIN pg_attribute a ON a.attrelid = i.indexrelid"
        " WHERE i.indrelid = 'execution_logs'::regclass AND a.attstattarget > 0"
    )
    for index in indexes:
        await connection.execute(f'DROP INDEX "{index["indexname"]}"')
    start = await connection.fetchval("SELECT now() - interval '30 days'")
    events, node_types, node_ids = (list(column) for column in zip(*STEPS, strict=True))
    for campaign in campaigns:
        await connection.execute(
            LOGS, campaign, start, events, SENDS, REPLIES, FAILURES, node_types, node_ids
        )
    await connection.execute("SET maintenance_work_mem = '512MB'")
    for index in indexes:
        await connection.execute(index["indexdef"])
    for target in targets:
        await connection.execute(
            f'ALTER INDEX "{target["relname"]}" ALTER COLUMN {target["attnum"]}'
            f" SET STATISTICS {target['attstattarget']}"
        )
    await connection.execute("VACUUM ANALYZE")
    return campaigns[0], time.perf_counter() - started


async def write_cost(connection: Any, campaign: UUID) -> tuple[float, float]:
    """100,000 entries copied in, with the search index and without it; both rolled back."""
    copy = """
        INSERT INTO execution_logs (campaign_id, execution_id, contact_id, contact_text, node_id,
                                    node_type, event, status, message, details, created_at)
        SELECT campaign_id, execution_id, contact_id, contact_text, node_id, node_type, event,
               status, message, details, created_at
        FROM execution_logs WHERE campaign_id = $1 LIMIT 100000
    """
    timings = []
    for drop in (False, True):
        transaction = connection.transaction()
        await transaction.start()
        try:
            if drop:
                await connection.execute("DROP INDEX execution_logs_search_idx")
            started = time.perf_counter()
            await connection.execute(copy, campaign)
            timings.append(time.perf_counter() - started)
        finally:
            await transaction.rollback()
    return timings[0], timings[1]


async def timed_pages(
    client: httpx.AsyncClient, path: str, params: dict[str, Any], repeat: int
) -> tuple[list[float], int]:
    samples = []
    found = 0
    for _ in range(repeat):
        started = time.perf_counter()
        response = await client.get(path, params={**params, "limit": 50})
        samples.append(time.perf_counter() - started)
        response.raise_for_status()
        found = len(response.json()["items"])
    return samples, found


async def deep_cursor(client: httpx.AsyncClient, path: str, params: dict[str, Any]) -> str | None:
    """The cursor 10,000 entries in (None if there are fewer)."""
    cursor = None
    for _ in range(20):
        query = {**params, "limit": 500, **({"cursor": cursor} if cursor else {})}
        response = await client.get(path, params=query)
        response.raise_for_status()
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return None
    return cursor


async def download(
    client: httpx.AsyncClient, path: str, params: dict[str, Any]
) -> tuple[int, int, float]:
    """Bytes, records and seconds. Records are lines: the bench's texts hold no newlines."""
    started = time.perf_counter()
    size = lines = 0
    async with client.stream("GET", path, params=params) as response:
        response.raise_for_status()
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            lines += chunk.count(b"\n")
    header = 1 if params["format"] == "csv" else 0
    return size, lines - header, time.perf_counter() - started


def spread(samples: list[float]) -> str:
    p50, p99 = percentile(samples, 0.5) * 1000, percentile(samples, 0.99) * 1000
    return f"p50 {p50:6.1f} ms  p99 {p99:6.1f} ms"


async def searches(
    client: httpx.AsyncClient, connection: Any, campaign: UUID, path: str, repeat: int
) -> None:
    print(f"\nsearch: the first page (limit 50), {repeat} requests each; every match exported"
          " (JSONL) and counted against COUNT(*); the plan's scans")  # fmt: skip
    # A username's beginning: that contact and the few whose numbers continue it.
    username = await connection.fetchval(
        "SELECT telegram_username FROM contacts ORDER BY telegram_username OFFSET 1234 LIMIT 1"
    )
    terms = [*SEARCHES[:2], ("username", f"@{username[:-2]}"), *SEARCHES[2:]]
    for label, term in terms:
        samples, _ = await timed_pages(client, path, {"search": term}, repeat)
        params = {"search": term, "format": "jsonl"}
        _, exported, export_s = await download(client, f"{path}/export", params)
        pattern = f"%{like_pattern(term)}%"
        counted = await connection.fetchval(COUNT, campaign, pattern)
        plan = await connection.fetch(SEARCH_PLAN, campaign, pattern)
        scans = [
            r[0].strip().removeprefix("->").strip().split("  ")[0]
            for r in plan
            if "Scan" in r[0] and "Heap" not in r[0]
        ]
        check = "=" if exported == counted else "MISMATCH"
        print(f"  {label:13} {term!r:21} {spread(samples)}  found {exported:7,} {check} COUNT"
              f" {counted:7,} (export {export_s:4.1f} s)  [{'; '.join(scans)}]")  # fmt: skip


async def filtered(
    client: httpx.AsyncClient, connection: Any, campaign: UUID, path: str, repeat: int
) -> None:
    print(f"\nfiltered pages (limit 50), {repeat} requests each")
    execution = await connection.fetchval(
        "SELECT execution_id FROM execution_logs WHERE campaign_id = $1 LIMIT 1", campaign
    )
    for label, params in [*FILTERS, ("execution_id=…", {"execution_id": str(execution)})]:
        first, found = await timed_pages(client, path, params, repeat)
        line = f"  {label:34} first page {spread(first)} ({found} rows)"
        cursor = await deep_cursor(client, path, params)
        if cursor is not None:
            deep, _ = await timed_pages(client, path, {**params, "cursor": cursor}, repeat)
            line += f"; 10,000 deep {spread(deep)}"
        print(line)
    feed = []
    for _ in range(repeat):
        started = time.perf_counter()
        (await client.get(f"/campaign-flows/{campaign}/activities")).raise_for_status()
        feed.append(time.perf_counter() - started)
    print(f"  {'activities (the last 20)':34} {spread(feed)}")


async def exports(client: httpx.AsyncClient, api: ServiceProcess, path: str, total: int) -> None:
    print(f"\nthe full export of {total:,} entries")
    print(f"  api peak memory (VmHWM) before: {vm_kib(api, 'VmHWM') / 1024:.0f} MiB"
          f" (resident now {vm_kib(api, 'VmRSS') / 1024:.0f} MiB)")  # fmt: skip
    for export_format in ("csv", "jsonl"):
        size, rows, seconds = await download(client, f"{path}/export", {"format": export_format})
        check = "=" if rows == total else "MISMATCH"
        record(Figure("logs", f"export {total:,} entries ({export_format})", seconds, "s", "lower"))
        print(f"  {export_format:5} {seconds:5.1f} s, {size / 2**20:6.1f} MiB, {rows:,} rows"
              f" ({check} the database's {total:,}), {rows / seconds:,.0f} rows/s;"
              f" api peak memory after: {vm_kib(api, 'VmHWM') / 1024:.0f} MiB")  # fmt: skip


async def main(rows: int, repeat: int) -> None:
    async with embedded() as infra:
        connection = await connect(infra.dsn)
        issued = await create_user(connection, "bench@example.com")
        print(f"seeding {rows:,} entries (and {rows // 4:,} in other campaigns) ...", flush=True)
        campaign, seed_s = await seed(connection, issued.user_id, rows)
        total = await connection.fetchval(
            "SELECT count(*) FROM execution_logs WHERE campaign_id = $1", campaign
        )
        everything = await connection.fetchval("SELECT count(*) FROM execution_logs")
        sizes = await connection.fetchval(
            "SELECT pg_size_pretty(pg_relation_size('execution_logs')) || ' table, '"
            " || pg_size_pretty(pg_relation_size('execution_logs_search_idx')) || ' search index'"
        )
        print(f"seeded in {seed_s:.0f} s: {total:,} entries in the campaign, {everything:,} in"
              f" all ({sizes})")  # fmt: skip
        with_index, without_index = await write_cost(connection, campaign)
        settings = Settings(
            database_url=infra.dsn,
            kafka_bootstrap=infra.bootstrap,
            topic_prefix=infra.topic_prefix,
            api_port=free_port(),
            kafka_session_timeout_ms=1500,
            kafka_heartbeat_interval_ms=300,
        )
        api = ServiceProcess("api", settings)
        path = f"/campaign-flows/{campaign}/logs"
        try:
            api.start()
            await api.wait_healthy()
            async with httpx.AsyncClient(
                base_url=api.url,
                headers={"Authorization": f"Bearer {issued.plaintext}"},
                timeout=600,
            ) as client:
                await searches(client, connection, campaign, path, repeat)
                await filtered(client, connection, campaign, path, repeat)
                await exports(client, api, path, total)
        finally:
            api.stop()
            await connection.close()
    ratio = with_index / without_index
    print(f"\nwrite cost of the search index: 100,000 entries inserted in {with_index:.2f} s"
          f" with it, {without_index:.2f} s without ({ratio:.1f}x)")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rows, arguments.repeat))
