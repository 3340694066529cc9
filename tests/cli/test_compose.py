"""The two-command experience and the container files stay true.

CI must run the README's test command exactly as written, so the README cannot promise a command
that CI does not run. docker-compose.yml must stay valid, keep its services, volume and health
checks, and take every secret from the environment.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
CI_RUN = ROOT / ".ci" / "run"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# The variables docker-compose.yml requires (`${VAR:?message}`).
REQUIRED = ("POSTGRES_PASSWORD", "REPLICATION_PASSWORD", "TIMEBANK_ADMIN_TOKEN", "TIMEBANK_DB_APP_PASSWORD")


def quick_start_commands() -> list[str]:
    """The shell blocks of the README's Quick start section, in order."""
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^## Quick start\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert match, "README.md has no '## Quick start' section"
    return re.findall(r"^```sh\n(.*?)^```", match.group(1), re.MULTILINE | re.DOTALL)


def readme_test_command() -> str:
    blocks = quick_start_commands()
    assert len(blocks) >= 2, blocks
    command = blocks[1]
    assert command.count("\n") == 1, f"the test command must be one line: {command!r}"
    return command.strip()


def test_readme_quick_start_is_two_one_line_commands() -> None:
    run, test = (block.strip() for block in quick_start_commands()[:2])
    assert "\n" not in run
    assert "\n" not in test
    assert run.startswith("python3 -m venv .venv && ")
    assert run.endswith(".venv/bin/timebank serve")
    assert test == readme_test_command()
    assert test.startswith("python3 -m venv .venv && ")
    assert "pip install -e '.[test]'" in test
    assert test.endswith("-m pytest")


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    command = readme_test_command()
    ci_lines = [line.strip() for line in CI_RUN.read_text(encoding="utf-8").splitlines()]
    # A whole line of its own, so it can be neither commented out nor wrapped in something else.
    assert command in ci_lines, f".ci/run does not run the README's test command:\n{command}"


def test_ci_script_is_strict_and_runs_every_check() -> None:
    assert os.access(CI_RUN, os.X_OK), ".ci/run must be executable"
    lines = [line.strip() for line in CI_RUN.read_text(encoding="utf-8").splitlines()]
    assert lines[0] in ("#!/usr/bin/env bash", "#!/bin/bash")
    assert "set -euo pipefail" in lines
    invocations = [line for line in lines if line.startswith("run ")]
    order = [
        next(i for i, line in enumerate(invocations) if needle in line)
        for needle in ("test_command", "ruff check .", "ruff format --check .", ".venv/bin/mypy")
    ]
    # Lint and types run from the venv that the test command installed, so after it.
    assert order == sorted(order)
    assert any("docker-compose -f docker-compose.yml config -q" in line for line in lines)


def test_dockerfile_builds_a_wheel_and_runs_unprivileged() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    froms = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    assert froms, "no FROM"
    assert all(image == "python:3.11-slim" for image in froms), froms
    assert len(froms) >= 2, "the wheel is built in a stage of its own"
    assert "pip wheel" in text
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^EXPOSE\s+8000\b", text, re.MULTILINE)
    healthcheck = re.search(r"^HEALTHCHECK\b.*?CMD\b(.*)$", text, re.MULTILINE | re.DOTALL)
    assert healthcheck
    assert "/health" in healthcheck.group(1)
    assert "curl" not in healthcheck.group(1), "the slim image has no curl"
    assert '\nCMD ["timebank", "serve", "--host", "0.0.0.0"]' in text


def test_dockerignore_is_an_allowlist() -> None:
    rules = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # Everything is excluded first, so a .env file or a virtualenv never reaches the build.
    assert rules[0] == "*"
    assert {"!pyproject.toml", "!README.md", "!sql/", "!timebank/"} <= set(rules)


def test_compose_file_has_no_literal_secrets() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if sep and re.search(r"PASSWORD|TOKEN|SECRET", key, re.IGNORECASE):
            assert re.fullmatch(r"\s*\$\{[A-Z_]+:\?[^}]*\}\s*", value), f"line {number} holds a literal: {line}"
        for credentials in re.findall(r"://([^@/]+)@", line):
            _, _, password = credentials.partition(":")
            assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", password), f"line {number} holds a literal: {line}"


# --- Through docker-compose itself ---------------------------------------------------------


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The docker-compose command, reading no .env file of the developer's."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (.ci/run installs Debian's docker-compose)")
    empty = tmp_path_factory.mktemp("compose") / "empty.env"
    empty.write_text("", encoding="utf-8")
    return [binary, "--env-file", str(empty), "-f", str(COMPOSE_FILE)]


@pytest.fixture(scope="module")
def dummies() -> dict[str, str]:
    """Values no one would commit, so finding them in the resolved file proves they came from the environment."""
    return {name: f"dummy-{name.lower().replace('_', '-')}-{secrets.token_hex(6)}" for name in REQUIRED}


def run_compose(compose: list[str], env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in REQUIRED}
    return subprocess.run(
        [*compose, *args], env={**base, **env}, capture_output=True, text=True, timeout=60, check=False
    )


def load_yaml(text: str, compose: list[str]) -> Any:
    """Parse YAML with PyYAML: the test venv's if it has one, else that of the Python running docker-compose."""
    try:
        yaml = importlib.import_module("yaml")
    except ImportError:
        pass
    else:
        return yaml.safe_load(text)
    shebang = Path(compose[0]).read_bytes()[:200].split(b"\n", 1)[0].decode(errors="replace")
    if not (shebang.startswith("#!") and "python" in shebang):
        pytest.skip("no YAML parser: PyYAML is not installed and docker-compose is not a Python program")
    parsed = subprocess.run(
        [*shebang[2:].split(), "-c", "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(parsed.stdout)


@pytest.mark.parametrize("missing", REQUIRED)
def test_compose_refuses_to_start_without_each_secret(
    compose: list[str], dummies: dict[str, str], missing: str
) -> None:
    env = {k: v for k, v in dummies.items() if k != missing}
    result = run_compose(compose, env, "config", "-q")
    assert result.returncode != 0
    assert missing in result.stderr


def test_compose_config_services_volume_and_health_checks(compose: list[str], dummies: dict[str, str]) -> None:
    result = run_compose(compose, dummies, "config")  # Validates the file, then prints it resolved.
    assert result.returncode == 0, result.stderr
    model = load_yaml(result.stdout, compose)
    services = model["services"]
    assert set(services) == {"db", "standby", "timebank"}
    assert {"pgdata", "standby-data"} <= set(model["volumes"])

    db = services["db"]
    assert db["image"] == "postgres:16"
    assert db["environment"]["POSTGRES_PASSWORD"] == dummies["POSTGRES_PASSWORD"]
    assert any(str(v).startswith("pgdata:/var/lib/postgresql/data") for v in db["volumes"]), db["volumes"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])

    app = services["timebank"]
    assert Path(app["build"]["context"]).resolve() == ROOT
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    env = app["environment"]
    assert env["TIMEBANK_DATABASE_URL"] == f"postgresql://postgres:{dummies['POSTGRES_PASSWORD']}@db:5432/postgres"
    assert env["TIMEBANK_ADMIN_TOKEN"] == dummies["TIMEBANK_ADMIN_TOKEN"]
    assert env["TIMEBANK_DB_APP_PASSWORD"] == dummies["TIMEBANK_DB_APP_PASSWORD"]
    assert "/ready" in " ".join(app["healthcheck"]["test"])
    ports = [str(p) if not isinstance(p, dict) else f"{p.get('published')}:{p.get('target')}" for p in app["ports"]]
    assert any(re.search(r"8000:8000\b", p) for p in ports), ports


def test_compose_standby_is_a_streaming_replica_of_db(compose: list[str], dummies: dict[str, str]) -> None:
    """PostgreSQL's own replication (pg_basebackup -R from db), read by the service without credentials in its URL."""
    result = run_compose(compose, dummies, "config")
    assert result.returncode == 0, result.stderr
    services = load_yaml(result.stdout, compose)["services"]
    db, standby, app = services["db"], services["standby"], services["timebank"]
    assert db["environment"]["REPLICATION_PASSWORD"] == dummies["REPLICATION_PASSWORD"]
    init = "/docker-entrypoint-initdb.d/allow-replication.sh"
    assert any(str(v).endswith(f"{init}:ro") for v in db["volumes"]), db["volumes"]
    assert (ROOT / "deploy" / "allow-replication.sh").is_file()
    assert standby["image"] == db["image"]
    assert standby["depends_on"]["db"]["condition"] == "service_healthy"
    assert standby["environment"]["PGPASSWORD"] == dummies["REPLICATION_PASSWORD"]
    start = " ".join([*standby["entrypoint"], *standby["command"]])
    assert "pg_basebackup -h db -U replicator" in start
    assert " -R " in start
    assert "hot_standby=on" in start
    assert any(str(v).startswith("standby-data:") for v in standby["volumes"]), standby["volumes"]
    assert app["environment"]["TIMEBANK_READ_DATABASE_URL"] == "postgresql://standby:5432/postgres"
    # The service does not wait for the standby: without it, every read goes to db.
    assert "standby" not in app["depends_on"]
