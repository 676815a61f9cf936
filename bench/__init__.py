"""Benchmarks of the agent as users run it: `python -m bench` (or `python -m bench --quick`).

Each run starts its own mosquitto and VictoriaMetrics on free ports (through `tests.servers`) and
runs `community-edge run` as a child process (through `tests.agent_process`); run it from the
repository root, where `tests` is a package.
"""
