"""Every metric the services export follows the Prometheus conventions: the dripline_ prefix,
base units, _total on counters, a unit on histograms, and bounded labels (no ids).

Two views, since neither is enough alone: prometheus_client's REGISTRY after importing every
module (what is exported, with its type), and the declarations in the source (the name as
written, which the registry no longer shows for counters, and every label name, which the
registry shows only once a series exists)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import REGISTRY

import services
import shared

REPO = Path(__file__).resolve().parents[2]
PACKAGES = (services, shared)
# prometheus_client's own process, platform and GC collectors, registered by default.
DEFAULT_COLLECTORS = ("process_", "python_")
HISTOGRAM_UNITS = ("_seconds", "_bytes", "_records", "_ratio")
NOT_BASE_UNITS = re.compile(
    r"_(ms|msec|millis|milliseconds|us|microseconds|minutes|hours|days|kb|mb|gb|percent)(_|$)"
)
# Label names that would carry an entity's id: one series per campaign, contact, ...
ID_LABEL = re.compile(
    r"(^|_)(id|ids|uuid|key)$|^(campaign|contact|execution|account|user|organization|"
    r"operation|message|phone|email|username|peer)s?$"
)
# Prometheus attaches these to every series (deploy/prometheus/ adds `service`); a metric's own
# label of that name would be renamed to exported_<name>.
TARGET_LABELS = frozenset({"job", "instance", "service"})
METRIC_TYPES = {"Counter", "Gauge", "Histogram", "Summary"}


@dataclass(frozen=True)
class Declared:
    kind: str
    name: str
    labels: tuple[str, ...]
    where: str


def import_everything() -> None:
    for package in PACKAGES:
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            importlib.import_module(module.name)


def declarations() -> list[Declared]:
    """Every Counter(...), Gauge(...), Histogram(...), Summary(...) in the services and shared."""
    found: list[Declared] = []
    for package in PACKAGES:
        for path in sorted(Path(next(iter(package.__path__))).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            # local name -> prometheus_client's class name (imports may be aliased)
            imported = {
                alias.asname or alias.name: alias.name
                for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module == "prometheus_client"
                for alias in node.names
                if alias.name in METRIC_TYPES
            }
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                    continue
                if node.func.id not in imported:
                    continue
                where = f"{path.relative_to(REPO)}:{node.lineno}"
                name = node.args[0] if node.args else None
                literal = f"{where}: a metric's name is a literal, so it can be found by grep"
                assert isinstance(name, ast.Constant), literal
                assert isinstance(name.value, str), literal
                labels_node = node.args[2] if len(node.args) > 2 else None
                for keyword in node.keywords:
                    if keyword.arg == "labelnames":
                        labels_node = keyword.value
                labels: tuple[str, ...] = ()
                if labels_node is not None:
                    assert isinstance(labels_node, (ast.List, ast.Tuple)), (
                        f"{where}: label names are a literal list"
                    )
                    labels = tuple(ast.literal_eval(labels_node))
                kind = imported[node.func.id].lower()
                found.append(Declared(kind, name.value, labels, where))
    return found


def test_declared_metrics_follow_the_conventions() -> None:
    declared = declarations()
    assert len(declared) >= 20  # the scan found the metrics, not nothing
    problems: list[str] = []
    for metric in declared:
        name = metric.name
        if not name.startswith("dripline_"):
            problems.append(f"{metric.where}: {name} lacks the dripline_ prefix")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            problems.append(f"{metric.where}: {name} is not snake_case")
        if NOT_BASE_UNITS.search(name):
            problems.append(f"{metric.where}: {name} is not in a base unit (seconds, bytes)")
        if metric.kind == "counter" and not name.endswith("_total"):
            problems.append(f"{metric.where}: counter {name} must end in _total")
        if metric.kind != "counter" and name.endswith("_total"):
            problems.append(f"{metric.where}: {metric.kind} {name} must not end in _total")
        if metric.kind in {"histogram", "summary"} and not name.endswith(HISTOGRAM_UNITS):
            problems.append(f"{metric.where}: {name} must end in its unit {HISTOGRAM_UNITS}")
        for label in metric.labels:
            if ID_LABEL.search(label):
                problems.append(f"{metric.where}: {name}'s label {label!r} looks like an id")
            if label in TARGET_LABELS or label == "le" or label.startswith("__"):
                problems.append(f"{metric.where}: {name}'s label {label!r} is reserved")
    assert not problems, "\n".join(problems)


def test_the_registry_exports_only_declared_conventional_metrics() -> None:
    import_everything()
    declared = {
        m.name.removesuffix("_total") if m.kind == "counter" else m.name: m for m in declarations()
    }
    problems: list[str] = []
    exported = 0
    for family in REGISTRY.collect():
        if family.name.startswith(DEFAULT_COLLECTORS):
            continue
        exported += 1
        source = declared.get(family.name)
        if source is None:
            problems.append(f"{family.name} ({family.type}) is exported but declared nowhere")
            continue
        if family.type != source.kind:
            problems.append(f"{family.name} is a {family.type}, declared as a {source.kind}")
        for sample in family.samples:
            extra = set(sample.labels) - set(source.labels) - {"le", "quantile"}
            if extra:
                problems.append(f"{sample.name} has undeclared labels {sorted(extra)}")
            if family.type == "counter" and not sample.name.endswith(("_total", "_created")):
                problems.append(f"{sample.name}: a counter's samples end in _total")
    assert exported == len(declared), sorted(set(declared) - {f.name for f in REGISTRY.collect()})
    assert not problems, "\n".join(problems)


def test_the_rules_catch_what_they_are_for() -> None:
    """The patterns themselves: an id-like label or a non-base unit is caught; ours are not."""
    for bad in ("campaign_id", "id", "account", "contact_ids", "execution", "api_key"):
        assert ID_LABEL.search(bad), bad
    for fine in ("consumer", "topic", "outcome", "status", "route", "method", "status_class",
                 "action", "result", "via", "periodic_job"):  # fmt: skip
        assert not ID_LABEL.search(fine), fine
    for bad in ("dripline_x_ms", "dripline_x_milliseconds", "dripline_x_minutes_total"):
        assert NOT_BASE_UNITS.search(bad), bad
    assert not NOT_BASE_UNITS.search("dripline_dispatch_lag_seconds")
