"""helm/pingyi: lint, template, and what the rendered manifests must hold.

Each property is checked over every values variant (defaults and each example): every
container non-root, read-only, capabilities dropped, with requests, limits and (API)
probes; no Secret and no secret value rendered; migrations as a hook Job that runs
before the Deployment with the owner's credentials, which nothing else gets; no
service-account token; the NetworkPolicy's shape; the shutdown timings matched to
`pingyi serve`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import uvicorn.config
import yaml

from service.authz.enforcer import POLICY_DIR
from service.migrate import MIGRATIONS_DIR
from tests.deploy.conftest import (
    CHART,
    EXAMPLES,
    ROOT,
    VARIANTS,
    Helm,
    Manifests,
    containers,
    one,
    pod_specs,
)

SECRET_NAME = re.compile(r"(URL|PASSWORD|SECRET|TOKEN|KEY)$")
HOOK = "helm.sh/hook"
WEIGHT = "helm.sh/hook-weight"


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_helm_lint_strict(helm: Helm, name: str) -> None:
    args = ["lint", "--strict", str(CHART)]
    for path in VARIANTS[name]:
        args += ["-f", str(path)]
    result = helm.run(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_default_render_has_the_pieces(render: Callable[..., Manifests]) -> None:
    kinds = sorted(doc["kind"] for doc in render())
    assert kinds == sorted(
        [
            "ConfigMap",
            "Deployment",
            "Job",
            "NetworkPolicy",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Service",
            "ServiceAccount",
            "ServiceAccount",
        ]
    )


def test_production_render_adds_ingress_autoscaler_and_checkpoints(
    render: Callable[..., Manifests],
) -> None:
    manifests = render(VARIANTS["production"])
    kinds = {doc["kind"] for doc in manifests}
    assert {"Ingress", "HorizontalPodAutoscaler", "CronJob", "PodDisruptionBudget"} <= kinds
    deployment = one(manifests, "Deployment")
    # The autoscaler owns the replica count: the Deployment must not fight it.
    assert "replicas" not in deployment["spec"]
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith("@sha256:" + "0" * 64), "a digest pins the image"


# The chart's kubeVersion floor, and the newest schemas kubernetes-validate bundles.
KUBE_VERSIONS = ("1.25.0", kubernetes_validate.latest_version())


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_manifests_match_the_kubernetes_api(variant: Manifests, kube_version: str) -> None:
    """Strict: an unknown or misplaced field (a typo, a field newer than the cluster)
    fails, as `kubectl apply --validate=strict` would."""
    for doc in variant:
        try:
            kubernetes_validate.validate(doc, kube_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} on {kube_version}: {exc}")


def test_every_container_is_non_root_read_only_and_limited(variant: Manifests) -> None:
    workloads = list(pod_specs(variant))
    assert workloads
    for workload, spec in workloads:
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, where
        assert pod["runAsUser"] > 0, where
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", where
        assert spec.get("hostNetwork") is not True and spec.get("hostPID") is not True, where
        for container in containers(spec):
            at = f"{where}/{container['name']}"
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] is True, at
            assert sc.get("runAsUser", pod["runAsUser"]) > 0, at
            assert sc["allowPrivilegeEscalation"] is False, at
            assert sc["readOnlyRootFilesystem"] is True, at
            assert sc.get("privileged") is not True, at
            assert sc["capabilities"]["drop"] == ["ALL"], at
            assert not sc["capabilities"].get("add"), at
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[bound]), f"{at} {bound}"
            # Under a read-only root the only writable places are the scratch volumes.
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert {"/tmp", "/var/lib/pingyi"} <= mounts, at  # noqa: S108 - mount paths


def test_api_probes_on_healthz_and_readyz(variant: Manifests) -> None:
    spec = one(variant, "Deployment")["spec"]["template"]["spec"]
    (api,) = spec["containers"]
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["startupProbe"]["httpGet"]["path"] == "/healthz"
    # Ready only once the database answers at this code's migration head.
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    port_names = {p["name"] for p in api["ports"]}
    for probe in ("livenessProbe", "startupProbe", "readinessProbe"):
        assert api[probe]["httpGet"]["port"] in port_names


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def test_no_secret_rendered_from_values(variant: Manifests) -> None:
    assert not [doc for doc in variant if doc["kind"] == "Secret"]
    text = yaml.safe_dump_all(variant)
    assert "postgresql://" not in text and "postgres://" not in text
    assert "BEGIN" not in text, "no key material"
    for doc in variant:
        if doc["kind"] == "ConfigMap":
            for name in doc.get("data", {}):
                assert not SECRET_NAME.search(name), f"{name} in a ConfigMap"
    for _, spec in pod_specs(variant):
        for container in containers(spec):
            for name, item in _env(container).items():
                if SECRET_NAME.search(name):
                    assert "value" not in item, f"{name} given as a literal"
                    assert "secretKeyRef" in item["valueFrom"], name
        for volume in spec.get("volumes", []):
            assert "hostPath" not in volume


def test_only_the_migration_job_holds_the_owner_url(variant: Manifests) -> None:
    for workload, spec in pod_specs(variant):
        for container in containers(spec):
            env = _env(container)
            if workload["kind"] == "Job":
                assert "secretKeyRef" in env["PINGYI_DATABASE_URL"]["valueFrom"]
                assert "PINGYI_APP_DATABASE_URL" not in env
                assert container["command"] == ["pingyi", "migrate"]
            else:
                # The application role only: RLS applies to everything these pods do.
                assert "PINGYI_DATABASE_URL" not in env, workload["kind"]
                assert "secretKeyRef" in env["PINGYI_APP_DATABASE_URL"]["valueFrom"]
                assert "PINGYI_APP_DB_PASSWORD" not in env
    api = one(variant, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert _env(api)["PINGYI_MIGRATE_ON_START"]["value"] == "0"


def _weight(doc: dict[str, Any]) -> int:
    return int(doc["metadata"].get("annotations", {}).get(WEIGHT, "0"))


def test_migration_hook_job_runs_before_the_deployment(variant: Manifests) -> None:
    job = one(variant, "Job", "migrate")
    phases = set(job["metadata"]["annotations"][HOOK].split(","))
    assert phases == {"pre-install", "pre-upgrade"}
    # A failed migration stops the release (Helm waits for a hook Job to complete);
    # a finished one is cleaned up, and a rerun replaces the last one.
    delete = set(job["metadata"]["annotations"]["helm.sh/hook-delete-policy"].split(","))
    assert "before-hook-creation" in delete
    deployment = one(variant, "Deployment")
    assert HOOK not in deployment["metadata"].get("annotations", {})
    # At pre-install nothing of the release exists: everything the Job's pod names must
    # be a hook that is created before it (lower weight) or come from outside the chart.
    spec = job["spec"]["template"]["spec"]
    hooks = {
        (doc["kind"], doc["metadata"]["name"]): doc
        for doc in variant
        if HOOK in doc["metadata"].get("annotations", {})
    }
    account = hooks[("ServiceAccount", spec["serviceAccountName"])]
    assert "pre-install" in account["metadata"]["annotations"][HOOK]
    assert _weight(account) < _weight(job)
    release_configmaps = {
        doc["metadata"]["name"]
        for doc in variant
        if doc["kind"] == "ConfigMap" and HOOK not in doc["metadata"].get("annotations", {})
    }
    (migrate,) = spec["containers"]
    named = {ref["configMapRef"]["name"] for ref in migrate.get("envFrom", [])}
    named |= {v["configMap"]["name"] for v in spec.get("volumes", []) if "configMap" in v}
    assert not named & release_configmaps
    for doc in variant:
        if doc["kind"] == "NetworkPolicy" and doc["metadata"]["name"].endswith("-migrate"):
            assert _weight(doc) < _weight(job)


def test_no_service_account_token(variant: Manifests) -> None:
    for doc in variant:
        if doc["kind"] == "ServiceAccount":
            assert doc["automountServiceAccountToken"] is False
    for workload, spec in pod_specs(variant):
        assert spec["automountServiceAccountToken"] is False, workload["kind"]


def _ports(rule: dict[str, Any]) -> set[tuple[Any, str]]:
    return {(p["port"], p["protocol"]) for p in rule["ports"]}


def test_network_policy_lets_in_only_the_ingress_controller(
    render: Callable[..., Manifests],
) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    manifests = render()
    policy = next(
        d
        for d in manifests
        if d["kind"] == "NetworkPolicy" and HOOK not in d["metadata"].get("annotations", {})
    )
    api = one(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= api.items()
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    (inbound,) = policy["spec"]["ingress"]
    assert inbound["from"] == values["networkPolicy"]["ingressFrom"]
    assert _ports(inbound) == {("http", "TCP")}
    dns, database = policy["spec"]["egress"]
    assert dns["to"] == values["networkPolicy"]["dns"]
    assert _ports(dns) == {(53, "UDP"), (53, "TCP")}
    assert _ports(database) == {(5432, "TCP")}


def test_network_policy_out_only_dns_postgres_and_wechat(
    render: Callable[..., Manifests],
) -> None:
    manifests = render(
        VARIANTS["production"],
        sets=[
            "wechat.enabled=true",
            "wechat.appId=wx123",
            "wechat.existingSecret=pingyi-wechat",
            "wechat.egressCIDRs={101.91.0.0/16}",
        ],
    )
    policies = [d for d in manifests if d["kind"] == "NetworkPolicy"]
    selected = set()
    for policy in policies:
        assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        for rule in policy["spec"]["egress"]:
            # Every rule names its destinations (production lists the database peers)
            # and ports: nothing else leaves the pods.
            assert rule["to"], policy["metadata"]["name"]
            assert _ports(rule) <= {(53, "UDP"), (53, "TCP"), (5432, "TCP"), (443, "TCP")}
            if (443, "TCP") in _ports(rule):
                assert rule["to"] == [{"ipBlock": {"cidr": "101.91.0.0/16"}}]
        selected.add(policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"])
        if policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] != "api":
            assert policy["spec"]["ingress"] == []
    # Every pod the release makes is under a policy.
    components = {
        spec_owner["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
        if spec_owner["kind"] != "CronJob"
        else spec_owner["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"][
            "app.kubernetes.io/component"
        ]
        for spec_owner, _ in pod_specs(manifests)
    }
    assert components == selected == {"api", "migrate", "audit-checkpoint"}
    api_policy = next(
        p
        for p in policies
        if p["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "api"
    )
    # The scraper may reach /metrics; nobody else besides the ingress controller.
    assert len(api_policy["spec"]["ingress"]) == 2


def test_shutdown_timings_match_pingyi_serve(variant: Manifests) -> None:
    spec = one(variant, "Deployment")["spec"]["template"]["spec"]
    (api,) = spec["containers"]
    command = api["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = int(command[1])
    unready = float(_env(api)["PINGYI_SHUTDOWN_DRAIN_SECONDS"]["value"])
    graceful = int(_env(api)["PINGYI_GRACEFUL_SHUTDOWN_SECONDS"]["value"])
    grace = spec["terminationGracePeriodSeconds"]
    # The kubelet kills at the grace period, counted from the start of preStop: the
    # sleep, the unready drain and uvicorn's whole graceful shutdown must fit, with
    # room to exit.
    assert pre_stop >= 5, "endpoint removal needs a few seconds to reach every proxy"
    assert grace >= pre_stop + unready + graceful + 1
    # When the process also drains by readiness, the kubelet's probe must have seen the
    # 503s (failureThreshold in a row) before uvicorn stops accepting.
    probe = api["readinessProbe"]
    if unready > 0:
        assert unready >= probe["failureThreshold"] * probe["periodSeconds"]


def test_every_setting_the_chart_sets_is_one_the_service_reads(variant: Manifests) -> None:
    source = (ROOT / "service" / "config.py").read_text()
    read = set(re.findall(r'"(PINGYI_[A-Z0-9_]+)"', source))
    set_by_chart: set[str] = set()
    for _, spec in pod_specs(variant):
        for container in containers(spec):
            set_by_chart |= {n for n in _env(container) if n.startswith("PINGYI_")}
    for doc in variant:
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].endswith("-settings"):
            set_by_chart |= set(doc.get("data", {}))
    assert set_by_chart - read == set()
    # Not a Pingyi setting: uvicorn's own, so the login rate limit sees real clients
    # behind the ingress controller.
    api = one(variant, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "FORWARDED_ALLOW_IPS" in _env(api)
    assert '"FORWARDED_ALLOW_IPS"' in Path(uvicorn.config.__file__).read_text()


def test_settings_of_any_scalar_type_land_as_strings(render: Callable[..., Manifests]) -> None:
    manifests = render(sets=["config.PINGYI_DB_POOL_SIZE=12", "config.PINGYI_DEV_X=true"])
    settings = next(d for d in manifests if d["metadata"]["name"].endswith("-settings"))
    assert settings["data"]["PINGYI_DB_POOL_SIZE"] == "12"
    assert settings["data"]["PINGYI_DEV_X"] == "true"


def test_chart_packages(helm: Helm, tmp_path: Path) -> None:
    result = helm.run("package", str(CHART), "--destination", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (archive,) = tmp_path.glob("pingyi-*.tgz")
    assert archive.stat().st_size > 0


def test_topology_spread_pdb_and_service(render: Callable[..., Manifests]) -> None:
    manifests = render(VARIANTS["production"])
    spec = one(manifests, "Deployment")["spec"]["template"]["spec"]
    keys = {c["topologyKey"] for c in spec["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    pdb = one(manifests, "PodDisruptionBudget")
    labels = one(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = one(manifests, "Service")
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_casbin_policy_override_is_mounted_where_the_code_reads_it(
    render: Callable[..., Manifests],
) -> None:
    manifests = render(sets=["casbin.policyCsv=p\\, member\\, member:read_self"])
    configmap = next(d for d in manifests if d["metadata"]["name"].endswith("-casbin"))
    assert configmap["data"]["policy.csv"].strip() == "p, member, member:read_self"
    (api,) = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    mount = next(m for m in api["volumeMounts"] if m["name"] == "casbin")
    # The image keeps the repository's layout under /app (Dockerfile).
    assert mount["mountPath"] == "/app/" + str((POLICY_DIR / "policy.csv").relative_to(ROOT))
    assert MIGRATIONS_DIR.relative_to(ROOT) == Path("migrations")
    default = render()
    assert not [d for d in default if d["metadata"]["name"].endswith("-casbin")]


@pytest.mark.parametrize(
    "toggle",
    [
        "networkPolicy.enabled=false",
        "podDisruptionBudget.enabled=false",
        "topologySpread.enabled=false",
        "autoscaling.enabled=true",
        "ingress.enabled=true",
    ],
)
def test_each_switch_renders_valid_manifests(render: Callable[..., Manifests], toggle: str) -> None:
    manifests = render(sets=[toggle, "ingress.hosts[0].host=pingyi.example.gov.cn"])
    for doc in manifests:
        kubernetes_validate.validate(doc, KUBE_VERSIONS[0], strict=True)
    kinds = {doc["kind"] for doc in manifests}
    if toggle == "networkPolicy.enabled=false":
        assert "NetworkPolicy" not in kinds
    if toggle == "autoscaling.enabled=true":
        assert "HorizontalPodAutoscaler" in kinds


BAD_VALUES = {
    "a database URL in the settings": ["config.PINGYI_DATABASE_URL=postgresql://u:p@db/x"],
    "a token in the settings": ["config.PINGYI_METRICS_TOKEN=abc"],
    "a setting the chart owns": ["config.PINGYI_DEV=1"],
    "not a Pingyi setting": ["config.HOME=/root"],
    "an unknown key (a password as a value)": ["database.password=secret"],
    "no replicas": ["replicaCount=0"],
    "metrics without its token's Secret": ["metrics.enabled=true"],
    "WeChat without egress": [
        "wechat.enabled=true",
        "wechat.appId=wx1",
        "wechat.existingSecret=w",
    ],
    "checkpoints without a volume": [
        "auditCheckpoints.enabled=true",
        "auditCheckpoints.existingSecret=k",
    ],
    "no limits": ["resources.limits=null"],
    "a digest that is not one": ["image.digest=latest"],
    "no shutdown drain": ["shutdown.gracefulSeconds=0"],
    "an autoscaler whose minimum exceeds its maximum": [
        "autoscaling.enabled=true",
        "autoscaling.minReplicas=5",
        "autoscaling.maxReplicas=2",
    ],
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_values_schema_refuses(helm: Helm, case: str) -> None:
    result = helm.template(sets=BAD_VALUES[case])
    assert result.returncode != 0, case
    assert "schema" in result.stderr or "must not exceed" in result.stderr, result.stderr


def test_examples_are_valid_yaml_objects() -> None:
    for path in EXAMPLES.glob("*.yaml"):
        docs = list(yaml.safe_load_all(path.read_text()))
        assert docs and all(isinstance(d, dict) for d in docs), path
