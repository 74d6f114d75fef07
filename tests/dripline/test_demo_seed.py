"""The demo data `dripline run` seeds: its campaign's stored statistics equal a recount from the
start, so a new user's first run shows the campaign's 300 contacts and the stats service finds
no drift to repair (before, it warned "statistics drifted ... total_contacts 0 → 300")."""

from __future__ import annotations

from dripline.supervisor import _prepare
from services.stats.verify import drift
from shared.db.pool import connect
from shared.settings import Settings


async def test_the_seeded_campaign_has_its_statistics_without_drift(settings: Settings) -> None:
    await _prepare(settings)
    await _prepare(settings)  # a second run seeds nothing more
    connection = await connect(settings.dsn)
    try:
        campaigns = await connection.fetch("SELECT id FROM campaigns WHERE name = 'Demo campaign'")
        assert len(campaigns) == 1
        stored = await connection.fetchrow(
            "SELECT total_contacts, executions_pending FROM campaign_stats WHERE campaign_id = $1",
            campaigns[0]["id"],
        )
        assert stored is not None
        assert tuple(stored) == (300, 300)
        assert await drift(connection) == []
        # An execution's later event refreshes its share against the stored one, as the stats
        # service does: still equal to the recount, nothing counted twice.
        await connection.execute(
            "UPDATE executions SET status = 'running' WHERE id = "
            "(SELECT id FROM executions WHERE campaign_id = $1 LIMIT 1)",
            campaigns[0]["id"],
        )
        await connection.execute(
            "SELECT refresh_statistics(ARRAY(SELECT id FROM executions WHERE campaign_id = $1"
            " AND status = 'running'), '{}', ARRAY[$1::uuid], ARRAY[now()], now())",
            campaigns[0]["id"],
        )
        assert await drift(connection) == []
    finally:
        await connection.close()
