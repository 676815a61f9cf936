"""The OpenAPI schema is what the API does: schemathesis against a running `community-edge run`.

Generated requests (from the schema, valid and invalid) go to every operation but the endless
live stream; any server error, undocumented status code or response that breaks its own schema
fails the test. Bounded (a few examples per operation, a fixed seed) to keep the suite fast, and
run in a few processes at once, each over a share of the paths, that together test every one.
Two checks are left out, each for a reason of the API's own:
- `positive_data_acceptance`: schema-valid requests that the domain refuses on purpose (a silence
  ending before it starts, a cursor the API never issued) are 4xx by design;
- `negative_data_rejection`: a repeated string query parameter given `false` is still a string.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.agent_process import TOKEN, AgentProcess
from tests.central_process import CentralApiProcess
from tests.servers import MosquittoServer

EXCLUDED_CHECKS = "positive_data_acceptance,negative_data_rejection"


_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})
# schemathesis runs in this many processes at once, each over its share of the paths: a run is
# bound by waiting on requests, not by CPU (its own --workers are threads, which crash CPython
# 3.11's compiler: "AST constructor recursion depth mismatch")
_SHARDS = 3


def _schemathesis(url: str, token: str, *exclude_paths: str) -> None:
    """Run schemathesis against `url`'s schema, every operation but `exclude_paths`' once, with
    the same seed and bounds as one run would; asserts each share passed."""
    st = Path(sys.executable).with_name("st")
    assert st.exists(), "schemathesis is a dev dependency: pip install -e . --group dev"
    schema = httpx.get(f"{url}/openapi.json", timeout=10).json()
    paths = sorted(p for p in schema["paths"] if p not in exclude_paths)
    operations = sum(len(_METHODS & set(schema["paths"][p])) for p in paths)
    runs = []
    for share in (paths[n::_SHARDS] for n in range(_SHARDS)):
        only = "^(" + "|".join(re.escape(p) for p in share) + ")$"
        command = [
            *(str(st), "run", f"{url}/openapi.json", "--header", f"Authorization: Bearer {token}"),
            *("--max-examples", "5", "--seed", "1", "--phases", "examples,coverage,fuzzing"),
            *("--checks", "all", "--exclude-checks", EXCLUDED_CHECKS),
            *("--include-path-regex", only, "--request-timeout", "10", "--no-color"),
        ]
        runs.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
    summaries = []
    try:
        for run in runs:
            output, _ = run.communicate(timeout=600)
            summaries.append((run.returncode, output[-3000:]))
    finally:
        for run in runs:
            run.kill()  # those still running when one failed
            run.wait()
    tested = 0
    for code, summary in summaries:
        print(summary)  # the figures for the closing note (`pytest -s`)
        assert code == 0, summary
        assert " passed" in summary
        counted = re.search(r"Tested: (\d+)", summary)
        assert counted is not None, summary
        tested += int(counted.group(1))
    assert tested == operations  # every route of the schema, each in one share


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
