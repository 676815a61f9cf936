"""The OpenAPI schema is what the API does: schemathesis against a running `community-edge run`.

Generated requests (from the schema, valid and invalid) go to every operation but the endless
live stream; any server error, undocumented status code or response that breaks its own schema
fails the test. Bounded (a few examples per operation, a fixed seed) to keep the suite fast.
Two checks are left out, each for a reason of the API's own:
- `positive_data_acceptance`: schema-valid requests that the domain refuses on purpose (a silence
  ending before it starts, a cursor the API never issued) are 4xx by design;
- `negative_data_rejection`: a repeated string query parameter given `false` is still a string.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.agent_process import TOKEN, AgentProcess
from tests.central_process import CentralApiProcess
from tests.servers import MosquittoServer

EXCLUDED_CHECKS = "positive_data_acceptance,negative_data_rejection"


def _schemathesis(url: str, token: str, *exclude_paths: str) -> str:
    """Run schemathesis against `url`'s schema; returns its summary, asserting it passed."""
    st = Path(sys.executable).with_name("st")
    assert st.exists(), "schemathesis is a dev dependency: pip install -e . --group dev"
    excluded = [arg for path in exclude_paths for arg in ("--exclude-path", path)]
    result = subprocess.run(
        [
            *(str(st), "run", f"{url}/openapi.json", "--header", f"Authorization: Bearer {token}"),
            *("--max-examples", "5", "--seed", "1", "--phases", "examples,coverage,fuzzing"),
            *("--checks", "all", "--exclude-checks", EXCLUDED_CHECKS, *excluded),
            *("--request-timeout", "10", "--no-color"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    summary = result.stdout[-3000:]
    print(summary)  # the figures for the closing note (`pytest -s`)
    assert result.returncode == 0, summary
    assert " passed" in summary
    return summary


@pytest.mark.broker
def test_the_gateway_api_answers_as_its_openapi_schema_says(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    # schemathesis sends wrong tokens on purpose: the per-address brake must not stop the run
    env = {"COMMUNITY_EDGE_API__AUTH_FAILURES_PER_MINUTE": "100000"}
    with AgentProcess(tmp_path / "agent", mosquitto.url, env=env) as agent:
        _schemathesis(agent.url, TOKEN, "/v1/alerts/stream")


def test_the_central_api_answers_as_its_openapi_schema_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the same brake as the gateway's, raised the same way (the child process inherits it)
    monkeypatch.setenv("COMMUNITY_EDGE_API__AUTH_FAILURES_PER_MINUTE", "100000")
    with CentralApiProcess(tmp_path / "central", f"sqlite:///{tmp_path / 'central.db'}") as api:
        _schemathesis(api.url, api.create_token("admin", "*"))
