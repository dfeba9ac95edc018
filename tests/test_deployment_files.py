"""The deployment files mean what the README says: gunicorn's settings and docker-compose.yml."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from portal.config import DEFAULTS

ROOT = Path(__file__).resolve().parent.parent
WEB_SETTINGS = {"BIND", "WORKERS", "THREADS", "TIMEOUT", "GRACEFUL_TIMEOUT", "KEEPALIVE",
                "MAX_REQUESTS"}  # fmt: skip


def gunicorn_settings(monkeypatch: pytest.MonkeyPatch, **env: str):
    for name in WEB_SETTINGS:
        monkeypatch.delenv(f"PORTAL_WEB_{name}", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    import portal.gunicorn_conf as conf

    return importlib.reload(conf)


def test_gunicorn_defaults_are_the_documented_ones(monkeypatch) -> None:
    conf = gunicorn_settings(monkeypatch)

    assert (conf.bind, conf.workers, conf.threads, conf.worker_class) == (
        "0.0.0.0:8000", 2, 4, "gthread"
    )  # fmt: skip
    assert (conf.timeout, conf.graceful_timeout, conf.max_requests) == (60, 30, 5000)
    assert conf.logger_class == "portal.logs.GunicornLogger"  # tokens redacted
    assert conf.preload_app is False  # nothing opened before the fork is shared
    assert conf.accesslog == "-"


def test_gunicorn_settings_come_from_the_environment(monkeypatch) -> None:
    conf = gunicorn_settings(
        monkeypatch, PORTAL_WEB_BIND="127.0.0.1:9000", PORTAL_WEB_WORKERS="5",
        PORTAL_WEB_THREADS="8", PORTAL_WEB_TIMEOUT="120", PORTAL_WEB_MAX_REQUESTS="100",
    )  # fmt: skip

    assert (conf.bind, conf.workers, conf.threads, conf.timeout) == ("127.0.0.1:9000", 5, 8, 120)
    assert (conf.max_requests, conf.max_requests_jitter) == (100, 10)


def test_gunicorn_accepts_the_settings_file(tmp_path) -> None:
    checked = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "python:portal.gunicorn_conf", "--check-config",
         "portal:create_app()"],
        env={"PATH": "/usr/bin:/bin", "PORTAL_INSTANCE_PATH": str(tmp_path)},
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip

    assert checked.returncode == 0, checked.stderr


def test_the_dockerfile_runs_gunicorn_with_the_settings_file() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()

    assert "gunicorn -c python:portal.gunicorn_conf 'portal:create_app()'" in dockerfile


def test_compose_runs_two_web_processes_a_scheduler_postgresql_and_redis() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]

    assert set(services) == {"db", "redis", "init", "web-a", "web-b", "scheduler"}
    for name in ("web-a", "web-b"):
        assert services[name]["command"] == [
            "gunicorn", "-c", "python:portal.gunicorn_conf", "portal:create_app()"
        ]  # fmt: skip
        assert services[name]["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert services["init"]["command"] == ["portal", "init"]
    assert services["scheduler"]["command"][:2] == ["portal", "scheduler"]
    for name in ("init", "web-a", "web-b", "scheduler"):
        service = services[name]
        assert service["env_file"] == ".env"  # the secrets, shared by every process
        assert service["environment"]["PORTAL_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert service["environment"]["PORTAL_RATELIMIT_STORAGE_URI"] == "redis://redis:6379/0"
    text = (ROOT / "docker-compose.yml").read_text()
    assert not re.search(r"PORTAL_(SECRET_KEY|KEY_ENCRYPTION_KEYS|LINK_SIGNING_KEYS):", text)


def test_the_example_env_names_only_real_settings_and_every_shared_secret() -> None:
    names = re.findall(r"^#?\s*([A-Z_]+)=", (ROOT / "examples/compose.env").read_text(), re.M)

    for name in names:
        if name.startswith("PORTAL_WEB_"):
            assert name.removeprefix("PORTAL_WEB_") in WEB_SETTINGS, name
        elif name != "POSTGRES_PASSWORD":
            assert name.removeprefix("PORTAL_") in DEFAULTS, name
    for secret in ("PORTAL_SECRET_KEY", "PORTAL_KEY_ENCRYPTION_KEYS", "PORTAL_LINK_SIGNING_KEYS"):
        assert secret in names
