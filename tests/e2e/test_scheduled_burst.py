"""Issue 16: a burst of campaigns due in the same second fires through the real scheduler, two
of them running, each campaign exactly once and all within a bound (bench/firing.py measures
10,000; this is the same scenario, smaller)."""

from __future__ import annotations

from bench.firing import fire
from shared.settings import Settings

CAMPAIGNS = 500
# Generous for a loaded two-core machine; the batched sweep takes well under a second here.
BOUND_S = 30.0


async def test_a_burst_of_due_campaigns_fires_each_once_with_two_schedulers(
    settings: Settings,
) -> None:
    figures = await fire(settings.dsn, settings, 2, CAMPAIGNS, timeout_s=BOUND_S * 4)
    # `fire` asserts every campaign active with exactly one status event (scheduled -> active,
    # campaign.scheduled_launch) and one execution.due, and both schedulers exiting cleanly.
    assert figures["all_active_s"] < BOUND_S, figures
    assert figures["published_s"] < BOUND_S * 2, figures
