"""`flask --app web lumi ...` with a bad configuration: one line naming the variable, no traceback, no secret."""

from __future__ import annotations

import subprocess
import sys

import pytest

from devtools.services import REPO_ROOT
from tests.conftest import TEST_API_KEY, TEST_API_SECRET, TEST_FERNET_KEY, python_env

# Valid, but nothing listens at these URLs: configuration is checked before anything is contacted.
VALID = {
    "LUMI_ENV": "test",
    "SHOPIFY_API_KEY": TEST_API_KEY,
    "SHOPIFY_API_SECRET": TEST_API_SECRET,
    "APP_URL": "http://localhost:8000",
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "MEILI_URL": "http://127.0.0.1:1",
    "MEILI_MASTER_KEY": "a-master-key-that-must-not-be-printed",
    "LUMI_ENCRYPTION_KEYS": TEST_FERNET_KEY,
}
FLASK_LUMI = [sys.executable, "-m", "flask", "--app", "web", "lumi"]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # FLASK_SKIP_DOTENV: a developer's .env must not fill in what a test leaves out.
    return subprocess.run(args, cwd=REPO_ROOT, env=python_env({**env, "FLASK_SKIP_DOTENV": "1"}),
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"APP_URL": None}, "Configuration error: APP_URL: is required but not set"),
        ({"REDIS_URL": "localhost:6379"}, "Configuration error: REDIS_URL: must be a URL"),
        (
            {"LUMI_ENCRYPTION_KEYS": "not-a-key-but-a-secret-value"},
            "Configuration error: LUMI_ENCRYPTION_KEYS: key #1 is not a valid Fernet key",
        ),
    ],
    ids=["missing", "malformed", "secret"],
)
def test_an_operator_command_names_the_bad_variable_on_one_line(change: dict[str, str | None], expected: str) -> None:
    env = {k: v for k, v in VALID.items() if k not in change}
    env.update({k: v for k, v in change.items() if v is not None})
    result = run([*FLASK_LUMI, "inventory", "lumi-demo.myshopify.com"], env)
    assert result.returncode != 0
    assert result.stderr.startswith(expected), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for secret in ("not-a-key-but-a-secret-value", VALID["MEILI_MASTER_KEY"], TEST_API_SECRET, TEST_FERNET_KEY):
        assert secret not in result.stderr + result.stdout


def test_listing_the_operator_commands_reports_it_the_same_way() -> None:
    result = run([*FLASK_LUMI, "--help"], {k: v for k, v in VALID.items() if k != "APP_URL"})
    assert result.returncode != 0
    assert result.stderr == "Configuration error: APP_URL: is required but not set\n"
