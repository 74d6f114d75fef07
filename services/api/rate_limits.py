"""Per-user rate limits: a fixed window counted in PostgreSQL, so every API instance shares
it; over the limit is 429 with Retry-After (the seconds until the window ends)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

from services.api.problems import rate_limited
from shared.db.pool import DbConnection
from shared.db.sql import Queries

RATE_LIMITS = Queries.load(Path(__file__).with_suffix(".sql"))


async def check(
    connection: DbConnection, subject: str, limit: int, window_s: int, now: datetime
) -> None:
    epoch = now.timestamp()
    start = datetime.fromtimestamp(epoch - epoch % window_s, tz=now.tzinfo)
    hits = await connection.fetchval(RATE_LIMITS["hit"], subject, start)
    await connection.execute(RATE_LIMITS["forget_old"], subject, start)
    if hits > limit:
        retry_after = max(1, math.ceil((start + timedelta(seconds=window_s) - now).total_seconds()))
        raise rate_limited(
            f"at most {limit} such requests per {window_s} s; try again in {retry_after} s",
            retry_after,
        )
