"""Production settings refuse to start when unsafe; JSON logs when configured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROD_ENV = {"SECRET_KEY": "s" * 50, "ALLOWED_HOSTS": "cp.example.com", "DATABASE_URL": "postgres://u@localhost/x"}


def load_settings(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "ALLOWED_HOSTS", "DEBUG"}}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            f"import django, os; os.environ['DJANGO_SETTINGS_MODULE']='{module}'; django.setup(); print('ok')",
        ],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_prod_settings_start_with_required_values() -> None:
    result = load_settings("evplatform.settings.prod", PROD_ENV)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({k: v for k, v in PROD_ENV.items() if k != "SECRET_KEY"}, "SECRET_KEY must be set"),
        ({**PROD_ENV, "DEBUG": "true"}, "DEBUG must be off"),
        ({k: v for k, v in PROD_ENV.items() if k != "ALLOWED_HOSTS"}, "ALLOWED_HOSTS must be set"),
    ],
    ids=["no-secret", "debug-on", "no-hosts"],
)
def test_prod_settings_refuse_unsafe_configuration(env: dict[str, str], message: str) -> None:
    result = load_settings("evplatform.settings.prod", env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_json_logs_when_configured() -> None:
    code = "import django, logging; django.setup(); logging.getLogger('evp.test').warning('hello', extra={'cp': 'CP1'})"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "evplatform.settings.dev", "LOG_FORMAT": "json"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert line["message"] == "hello"
    assert line["level"] == "WARNING"
    assert line["logger"] == "evp.test"
    assert line["cp"] == "CP1"
