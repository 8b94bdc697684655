"""`awe dev --once`: the README's first command, as far as a test can take it (the session's broker)."""

from __future__ import annotations

import subprocess
import sys

from tests.harness import REPO, settings_env, unique_settings


def test_dev_runs_the_demo_to_a_completed_run(kafka_bootstrap: str) -> None:
    settings = unique_settings(kafka_bootstrap)
    done = subprocess.run(
        [sys.executable, "-m", "awe", "dev", "--once"],
        env=settings_env(settings),
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
