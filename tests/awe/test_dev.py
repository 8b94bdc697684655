"""`awe dev --once`: the README's first command, as far as a test can take it (the session's broker)."""

from __future__ import annotations

import subprocess
import sys

from awe.dev import demo_model
from tests.harness import REPO, settings_env, unique_settings


def test_dev_runs_the_demo_to_a_completed_run(kafka_bootstrap: str) -> None:
    settings = unique_settings(kafka_bootstrap)
    env = {k: v for k, v in settings_env(settings).items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
    done = subprocess.run(
        [sys.executable, "-m", "awe", "dev", "--once"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "registered triage version 1" in out
    assert "approving review" in out
    assert "RunSucceeded" in out
    assert '"status": "succeeded"' in out
    assert '"urgent": 2' in out
    assert "registered plugin redact@1" in out
    assert '"redacted": 2' in out  # the redact plugin took the e-mail address and the phone number out
    assert "[email] or [phone]" in out  # and the model saw the redacted text
    assert "AI provider: echo" in out
    assert "AICallRecorded summary echo echo-1" in out and "simulated" in out
    assert '"summary": "echo: Summarise what needs attention first' in out


def test_the_demo_prefers_a_real_provider_when_its_key_is_set() -> None:
    assert demo_model({"OPENAI_API_KEY": "sk"})[:2] == ("openai", "gpt-4o-mini")
    assert demo_model({"ANTHROPIC_API_KEY": "sk"})[:2] == ("anthropic", "claude-haiku-4-5")
    assert demo_model({})[:2] == ("echo", "echo-1")
