"""The layout holds: imports follow the flow, stages are used through their public names.

`edge` is the shared vocabulary (model, errors, clock, ...) beneath seven stages in the order a
message passes them, and the agent above that assembles them. A module may import its own stage,
an earlier stage or the vocabulary, never a later stage; `edge` never imports `gateway`; and from
outside a stage only the names its `__init__.py` lists are imported (tests may reach inside).
Starting the gateway leaves the libraries of a monthly report or an optional server unloaded.
"""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("ingest", "decode", "enrich", "rules", "alerts", "outbox", "sinks", "agent")
VOCABULARY = (
    "model",
    "errors",
    "clock",
    "database",
    "checkpointer",
    "yaml_file",
    "rule_spec",
    "identifier",
)
PACKAGES = ("edge", "gateway", "simulators", "bench")


def _rank(module: str) -> int | None:
    """0 for the vocabulary, 1.. for the stages in flow order, None outside `edge`."""
    parts = module.split(".")
    if parts[0] != "edge":
        return None
    if len(parts) == 1 or parts[1] in VOCABULARY:
        return 0
    return STAGES.index(parts[1]) + 1


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every absolute import in a file, also those inside functions."""
    found: list[tuple[int, str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, a.name, []) for a in node.names)
    return found


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_every_edge_module_belongs_to_a_stage_or_the_vocabulary() -> None:
    loose = [
        p.name for p in (ROOT / "edge").glob("*.py") if p.stem not in (*VOCABULARY, "__init__")
    ]
    assert loose == [], f"edge/ holds modules outside the stages and the vocabulary: {loose}"
    folders = sorted(p.name for p in (ROOT / "edge").iterdir() if (p / "__init__.py").exists())
    assert folders == sorted(STAGES)


def test_imports_follow_the_flow() -> None:
    wrong: list[str] = []
    for path in _sources():
        here = _module_of(path)
        rank = _rank(here)
        for line, module, _names in _imports(path):
            where = f"{path.relative_to(ROOT)}:{line}: {here} imports {module}"
            if here.startswith("edge") and module.split(".")[0] in ("gateway", "simulators"):
                wrong.append(f"{where} (edge never imports {module.split('.')[0]})")
            target = _rank(module)
            if rank is None or target is None:
                continue
            same_stage = here.split(".")[:2] == module.split(".")[:2]
            if not same_stage and target > rank:
                wrong.append(f"{where} (a later stage: imports run back up the flow)")
    assert wrong == [], "\n".join(wrong)


def test_other_stages_and_packages_import_only_public_names() -> None:
    wrong: list[str] = []
    for path in _sources():
        here = _module_of(path)
        for line, module, names in _imports(path):
            parts = module.split(".")
            if parts[0] != "edge" or len(parts) < 2 or parts[1] not in STAGES:
                continue
            if here.split(".")[:2] == parts[:2]:
                continue  # inside its own stage
            where = f"{path.relative_to(ROOT)}:{line}"
            if len(parts) > 2:
                wrong.append(f"{where}: imports {module}; use `from edge.{parts[1]} import ...`")
                continue
            public = importlib.import_module(module).__all__
            wrong.extend(
                f"{where}: {name} is not public in {module}" for name in names if name not in public
            )
    assert wrong == [], "\n".join(wrong)


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_lists_its_public_names(stage: str) -> None:
    package = importlib.import_module(f"edge.{stage}")
    listed = package.__all__  # ruff's RUF022 keeps it sorted
    assert len(listed) == len(set(listed))
    missing = [name for name in listed if not hasattr(package, name)]
    assert missing == []


def test_central_is_its_own_concern_inside_the_gateway() -> None:
    """The central API is built on the gateway's access control and API plumbing, and started by
    the command line; nothing else of the gateway (the agent's wiring, its API) depends on it."""
    wrong: list[str] = []
    for path in _sources():
        here = _module_of(path)
        for line, module, _names in _imports(path):
            if not module.startswith("gateway.central"):
                continue
            if here.startswith(("gateway.central", "gateway.cli", "bench")):
                continue
            wrong.append(f"{path.relative_to(ROOT)}:{line}: {here} imports {module}")
    assert wrong == [], "\n".join(wrong)


# Imported only where they are used: each is megabytes of every agent's resident memory.
LOADED_WHEN_USED = {
    "fpdf": "the care report's PDF (31 MB with fontTools, Pillow and cryptography)",
    "fontTools": "the care report's PDF",
    "PIL": "the care report's PDF",
    "influxdb_client": "a time-series server (12 MB), when tsdb.url is set",
}


def test_starting_the_gateway_leaves_report_and_tsdb_libraries_unloaded() -> None:
    """`community-edge run` imports `gateway.cli` and the wiring; a fresh interpreter shows what
    that loads (this process's modules include whatever other tests imported)."""
    code = "import sys, gateway.cli, gateway.wiring; print(*sorted(sys.modules))"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    tops = {module.split(".")[0] for module in loaded}
    assert "gateway.wiring" in loaded  # the check ran
    early = {name: why for name, why in LOADED_WHEN_USED.items() if name in tops}
    assert early == {}, f"imported at start, though only needed for: {early}"
