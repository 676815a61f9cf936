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
from tests.servers import MosquittoServer

EXCLUDED_CHECKS = "positive_data_acceptance,negative_data_rejection"


@pytest.mark.broker
def test_the_api_answers_as_its_openapi_schema_says(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    # schemathesis sends wrong tokens on purpose: the per-address brake must not stop the run
    env = {"COMMUNITY_EDGE_API__AUTH_FAILURES_PER_MINUTE": "100000"}
    st = Path(sys.executable).with_name("st")
    assert st.exists(), "schemathesis is a dev dependency: pip install -e . --group dev"
    with AgentProcess(tmp_path / "agent", mosquitto.url, env=env) as agent:
        result = subprocess.run(
            [
                str(st),
                "run",
                f"{agent.url}/openapi.json",
                "--header",
                f"Authorization: Bearer {TOKEN}",
                "--max-examples",
                "5",
                "--seed",
                "1",
                "--phases",
                "examples,coverage,fuzzing",
                "--checks",
                "all",
                "--exclude-checks",
                EXCLUDED_CHECKS,
                "--exclude-path",
                "/v1/alerts/stream",
                "--request-timeout",
                "10",
                "--no-color",
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
