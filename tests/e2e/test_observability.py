"""The dashboards against the running services: every metric a dashboard query names is one the
services export, and with a real Prometheus scraping them while campaigns, flood waits and bulk
work run, every dashboard query returns data.

The Prometheus server is Debian's package, unpacked by scripts/fetch-prometheus.sh (the
Makefile's test target runs it) into .cache/prometheus/; DRIPLINE_PROMETHEUS may name another
binary. Without one the test fails: it does not skip."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from dripline.infra import free_port
from dripline.processes import SERVICES, service_port
from shared.settings import Settings
from tests.builders import add_contacts, contact, ok
from tests.e2e.conftest import Stack
from tests.support import REPO, eventually

DASHBOARDS = REPO / "deploy" / "grafana" / "dashboards"
DEPLOY_PROMETHEUS = REPO / "deploy" / "prometheus"
FETCH_SCRIPT = "scripts/fetch-prometheus.sh"
# Grafana's macros, as the test evaluates them: one window over the whole scenario, so every
# increment it caused is inside it.
MACROS = {"$__rate_interval": "5m", "$__interval": "5m", "$__range": "5m"}
# Panels whose query may rightly have no data in this scenario: title -> why. (Empty: the
# scenario produces everything, flood waits included.)
EXEMPT: dict[str, str] = {}
# Panels that must show activity, not only a series at zero: the scenario causes each of these
# (so a counter whose first increment was lost, or a gauge never set, is caught).
ACTIVE = frozenset(
    {"Executions dispatched", "Sends by outcome", "Replies and deliveries", "Dispatch lag",
     "Health transitions", "Flood waits and limits", "Flood wait length", "Bulk operation items",
     "Bulk action items", "Event age at consumption (p95)", "Messages consumed",
     "Outbox publish latency", "Records published", "Requests", "Accounts by health status",
     "Batch handling time (p95)", "Latency by service"}
)  # fmt: skip

# --- Dashboard queries and the metric names in them ------------------------------------------


@dataclass(frozen=True)
class Query:
    dashboard: str
    panel: str
    expr: str


def dashboard_queries() -> list[Query]:
    found: list[Query] = []
    files = sorted(DASHBOARDS.glob("*.json"))
    assert files, f"no dashboards in {DASHBOARDS}"

    def walk(name: str, panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            walk(name, panel.get("panels", []))  # a row's collapsed panels
            for target in panel.get("targets", []):
                found.append(Query(name, panel["title"], target["expr"]))

    for path in files:
        board = json.loads(path.read_text())
        walk(path.name, board["panels"])
    return found


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_TOKENS = re.compile(
    r"(?P<number>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?[smhdwy]*)|(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
)
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
     "group_left", "group_right", "inf", "nan", "atan2", "start", "end"}
)  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions or
    aggregations (followed by '('), keywords, label names (in matchers and grouping clauses),
    strings, numbers or durations."""
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names: set[str] = set()
    for token in _TOKENS.finditer(text):
        name = token.group("name")
        if name is None or name.lower() in _KEYWORDS:
            continue
        if text[token.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        names.add(name)
    return names


def exported(exposition: str) -> tuple[set[str], set[str]]:
    """The metric names of a text exposition (its TYPE lines, which list a metric even before
    it has a series) and which of them are histograms."""
    names: set[str] = set()
    histograms: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind == "histogram":
                histograms.add(name)
    return names, histograms


def base_name(name: str, histograms: set[str]) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name.removesuffix(suffix) in histograms:
            return name.removesuffix(suffix)
    return name


async def scrape_all(stack: Stack) -> dict[str, str]:
    texts: dict[str, str] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for name, process in stack.processes.items():
            response = await client.get(f"{process.url}/metrics")
            assert response.status_code == 200, (name, response.text)
            texts[name] = response.text
    return texts


def test_the_tokenizer_finds_metric_names_only() -> None:
    assert metric_names(
        'histogram_quantile(0.95, sum by (le, route) (rate(x_seconds_bucket{route!~"/a|b"}'
        "[$__rate_interval])))"
    ) == {"x_seconds_bucket"}
    assert metric_names(
        'sum(rate(a_total{outcome!~"sent"}[5m])) / clamp_min(sum(rate(a_total[5m])), 1e-9)'
        " or on(job) vector(0) and b unless ignoring(x) c offset 5m"
    ) == {"a_total", "b", "c"}
    assert metric_names("topk(10, max by (status) (gauge_one)) > bool 2") == {"gauge_one"}


def unexported(queries: list[Query], expositions: list[str]) -> list[str]:
    """Each metric a query names that none of these expositions has, as 'dashboard / panel:
    name'; a query that names no metric at all is reported too."""
    names: set[str] = set()
    histograms: set[str] = set()
    for text in expositions:
        found, found_histograms = exported(text)
        names |= found
        histograms |= found_histograms
    missing = []
    for query in queries:
        selected = metric_names(query.expr)
        if not selected:
            missing.append(f"{query.dashboard} / {query.panel}: no metric in {query.expr!r}")
        for name in sorted(selected):
            if base_name(name, histograms) not in names:
                missing.append(f"{query.dashboard} / {query.panel}: {name}")
    return missing


def test_a_metric_nobody_exports_is_reported() -> None:
    exposition = (
        "# HELP a_seconds A\n# TYPE a_seconds histogram\na_seconds_count 1.0\n"
        "# HELP b_total B\n# TYPE b_total counter\nb_total 1.0\n"
    )
    queries = [
        Query("d.json", "fine", "rate(a_seconds_bucket[5m]) + a_seconds_sum + b_total"),
        Query("d.json", "typo", "rate(b_totl[5m])"),
        Query("d.json", "nothing", "vector(1)"),
    ]
    assert unexported(queries, [exposition]) == [
        "d.json / typo: b_totl",
        "d.json / nothing: no metric in 'vector(1)'",
    ]


def test_the_lists_of_panels_name_real_panels() -> None:
    panels = {query.panel for query in dashboard_queries()}
    assert set(EXEMPT) | ACTIVE <= panels, (set(EXEMPT) | ACTIVE) - panels


async def test_every_dashboard_query_names_only_metrics_the_services_export(
    stack: Stack,
) -> None:
    expositions = await scrape_all(stack)
    missing = unexported(dashboard_queries(), list(expositions.values()))
    assert not missing, "dashboards name metrics no service exports:\n" + "\n".join(missing)


# --- A real Prometheus ------------------------------------------------------------------------


def prometheus_binary() -> Path:
    named = os.environ.get("DRIPLINE_PROMETHEUS")
    candidates = [Path(named)] if named else []
    candidates.append(REPO / ".cache" / "prometheus" / "usr" / "bin" / "prometheus")
    on_path = shutil.which("prometheus")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        f"no Prometheus server: run {FETCH_SCRIPT} (make test does), or set "
        f"DRIPLINE_PROMETHEUS to a prometheus binary; looked at {[str(c) for c in candidates]}"
    )


def scrape_config(settings: Settings, interval: str = "1s") -> dict[str, Any]:
    """The services of this test, labelled by `service` as deploy/prometheus/ labels them (the
    dashboards group by it), scraped every second."""
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": "dripline",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{service_port(settings, name)}"],
                     "labels": {"service": name}}
                    for name in SERVICES
                ],
            }
        ],
    }  # fmt: skip


def deployed_ports(config: dict[str, Any]) -> dict[str, list[int]]:
    """service -> ports, from a scrape config's dripline job: static targets labelled with
    their service, or DNS names (the compose service names) with their port."""
    ports: dict[str, list[int]] = {}
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "dripline"]
    for group in job.get("static_configs", []):
        for target in group["targets"]:
            ports.setdefault(group["labels"]["service"], []).append(int(target.rsplit(":")[1]))
    for group in job.get("dns_sd_configs", []):
        for name in group["names"]:
            ports.setdefault(name, []).append(int(group["port"]))
    return ports


@pytest.mark.parametrize(
    "path", sorted(DEPLOY_PROMETHEUS.glob("*.yml")), ids=lambda path: str(path.name)
)
def test_the_deploy_scrape_configs_name_every_service_on_its_port(path: Path) -> None:
    defaults = Settings.model_construct()  # the defaults, whatever this shell's environment
    config = yaml.safe_load(path.read_text())
    assert deployed_ports(config) == {name: [service_port(defaults, name)] for name in SERVICES}


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    async def query(self, client: httpx.AsyncClient, expr: str) -> list[dict[str, Any]]:
        response = await client.get(f"{self.url}/api/v1/query", params={"query": expr})
        body = response.json()
        assert response.status_code == 200, (expr, body)
        assert body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def wait_for(self, client: httpx.AsyncClient, *exprs: str, timeout_s: float = 30) -> None:
        """Until each of these selects a series above zero."""
        deadline = time.monotonic() + timeout_s
        while True:
            missing = [
                expr
                for expr in exprs
                if not any(float(r["value"][1]) > 0 for r in await self.query(client, expr))
            ]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"Prometheus has seen none of {missing} in {timeout_s}s")
            await asyncio.sleep(0.5)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def start_prometheus(settings: Settings, home: Path) -> Prometheus:
    binary = prometheus_binary()
    (home / "prometheus.yml").write_text(yaml.safe_dump(scrape_config(settings)))
    port = free_port()
    log = home / "prometheus.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(binary), f"--config.file={home / 'prometheus.yml'}",
             f"--storage.tsdb.path={home / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
             "--log.level=warn"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    return Prometheus(f"http://127.0.0.1:{port}", process, log)


@contextlib.asynccontextmanager
async def running_prometheus(settings: Settings) -> AsyncIterator[Prometheus]:
    home = Path(tempfile.mkdtemp(prefix="dripline-prometheus-"))
    prometheus = start_prometheus(settings, home)
    process = prometheus.process
    try:
        async with httpx.AsyncClient(timeout=2) as client:

            async def ready() -> bool:
                if process.poll() is not None:
                    raise RuntimeError(f"prometheus exited:\n{prometheus.output()}")
                with contextlib.suppress(httpx.HTTPError):  # not listening yet
                    return (await client.get(f"{prometheus.url}/-/ready")).status_code == 200
                return False

            await eventually(ready, timeout_s=30)
        yield prometheus
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        shutil.rmtree(home, ignore_errors=True)


# --- The scenario ----------------------------------------------------------------------------

ASK = {
    "start": "hello",
    "nodes": [
        {"id": "hello", "type": "send_message", "text": "Hi {first_name}"},
        {"id": "wait", "type": "wait_for_reply", "timeout_seconds": 2},
        {"id": "end", "type": "end"},
    ],
    "edges": [
        {"from": "hello", "to": "wait"},
        {"from": "wait", "to": "end", "when": "replied"},
        {"from": "wait", "to": "end", "when": "timed_out"},
    ],
}
ONE_SEND = {
    "start": "hello",
    "nodes": [
        {"id": "hello", "type": "send_message", "text": "Hi {first_name}"},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"from": "hello", "to": "end"}],
}
FAST = {"min_gap_s": 0, "jitter_s": 0, "flood_margin_s": 0}
STEADY = {
    "contacts": {
        "obs_talks": {"reply_after_s": 0.3},  # the reply is its delivery confirmation
        "obs_reads": {"read_after_s": 0.1},
        "obs_private": {"privacy_restricted": True},
    }
}
# One send per two seconds: the second contact's send meets a flood wait of a second.
BURSTY = {"burst": {"sends": 1, "window_s": 2, "flood_wait_s": 1}}


async def launch(
    api: httpx.AsyncClient, name: str, simulation: dict[str, Any], flow: dict[str, Any],
    people: list[str],
) -> dict[str, Any]:  # fmt: skip
    account = ok(
        await api.post(
            "/telegram-accounts",
            json={"display_name": name, "simulation": simulation, "pacing": FAST, "warm": True},
        ),
        201,
    )
    created: dict[str, Any] = ok(
        await api.post(
            "/campaign-flows",
            json={"name": name, "telegram_account_id": account["id"], "flow": flow},
        ),
        201,
    )
    ids = [(await contact(api, username))["id"] for username in people]
    await add_contacts(api, created["id"], ids)
    ok(await api.post(f"/campaign-flows/{created['id']}/launch"))
    return created


async def run_scenario(stack: Stack, prometheus: Prometheus) -> None:
    """Campaigns with replies, reads, a refused contact and flood waits; a rejected command; a
    bulk operation and a bulk action. Returns once Prometheus has seen their effects."""
    api = stack.api
    steady = await launch(api, "Steady", STEADY, ASK, ["obs_talks", "obs_reads", "obs_private"])
    bursty = await launch(api, "Bursty", BURSTY, ONE_SEND, ["obs_first", "obs_second"])
    draft = ok(await api.post("/campaign-flows", json={"name": "Draft"}), 201)
    rejected = await api.post(f"/campaign-flows/{draft['id']}/pause")
    assert rejected.status_code == 409, rejected.text

    async with httpx.AsyncClient(timeout=5) as client:
        await prometheus.wait_for(
            client,
            'dripline_sends_total{outcome="flood_wait"}',
            'dripline_sends_total{outcome="contact_permanent"}',
            'dripline_deliveries_detected_total{via="reply"}',
            'dripline_deliveries_detected_total{via="read"}',
            'dripline_telegram_account_transitions_total{status="cooldown"}',
        )

        async def steady_done() -> bool:
            found = ok(await api.get(f"/campaign-flows/{steady['id']}"))
            return bool(found["status"] == "completed")

        await eventually(steady_done, timeout_s=20)
        operation = ok(
            await api.post(
                "/campaign-flows/bulk",
                json={"action": "stop", "campaign_ids": [bursty["id"], draft["id"]], "wait": 10},
            ),
            200,
        )
        assert (operation["success_count"], operation["skipped_count"]) == (1, 1), operation
        people = ok(await api.get("/contacts"))["items"]
        action = ok(
            await api.post(
                "/bulk-actions",
                json={"name": "Seen", "action": "add_tags", "params": {"tags": ["seen"]},
                      "contact_ids": [p["id"] for p in people]},
            ),
            201,
        )  # fmt: skip

        async def action_done() -> bool:
            found = ok(await api.get(f"/bulk-actions/{action['id']}"))
            return bool(found["status"] == "completed")

        await eventually(action_done, timeout_s=20)
        await prometheus.wait_for(
            client,
            'dripline_bulk_action_items_total{outcome="succeeded"}',
            'dripline_bulk_operation_items_total{result="succeeded"}',
        )


def substitute(expr: str) -> str:
    for macro, value in MACROS.items():
        expr = expr.replace(macro, value)
    assert "$" not in expr, f"a Grafana variable the test does not know: {expr}"
    return expr


def has_data(result: list[dict[str, Any]], active: bool) -> bool:
    """At least one series with a number (a quantile of nothing is NaN: no data); if `active`,
    one above zero."""
    values = [float(r["value"][1]) for r in result]
    return any(v > 0 if active else not math.isnan(v) for v in values)


@pytest.mark.settings(health_check_interval_s=1.0)
async def test_with_prometheus_scraping_every_dashboard_query_returns_data(
    stack: Stack,
) -> None:
    started = time.monotonic()
    async with running_prometheus(stack.settings) as prometheus:
        async with httpx.AsyncClient(timeout=5) as client:

            async def targets_up() -> bool:
                response = await client.get(f"{prometheus.url}/api/v1/targets")
                active = response.json()["data"]["activeTargets"]
                return len(active) == len(SERVICES) and all(t["health"] == "up" for t in active)

            await eventually(targets_up, timeout_s=20, interval_s=0.5)
        await run_scenario(stack, prometheus)
        await asyncio.sleep(2.5)  # a few more scrapes: the last gauges and counts are in
        empty: list[str] = []
        async with httpx.AsyncClient(timeout=10) as client:
            for query in dashboard_queries():
                if query.panel in EXEMPT:
                    continue
                result = await prometheus.query(client, substitute(query.expr))
                if not has_data(result, query.panel in ACTIVE):
                    empty.append(f"{query.dashboard} / {query.panel}: {query.expr}")
    assert not empty, "dashboard queries without data:\n" + "\n".join(empty)
    assert time.monotonic() - started < 90


def test_without_a_prometheus_binary_the_test_fails_and_says_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DRIPLINE_PROMETHEUS", str(tmp_path / "nothing-here"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("tests.e2e.test_observability.REPO", tmp_path)
    with pytest.raises(pytest.fail.Exception, match=r"fetch-prometheus\.sh"):
        prometheus_binary()
