"""Prometheus text exposition of the agent's counters and gauges (no personal data in labels)."""

from __future__ import annotations

from edge.agent import Agent


def _line(name: str, value: float, labels: dict[str, str] | None = None) -> str:
    if labels:
        inner = ",".join(
            f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34)).replace(chr(10), " ")}"'
            for k, v in sorted(labels.items())
        )
        return f"{name}{{{inner}}} {value}"
    return f"{name} {value}"


async def render_metrics(agent: Agent) -> str:
    out: list[str] = []

    def metric(
        name: str, kind: str, help_text: str, samples: list[tuple[dict[str, str], float]]
    ) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(_line(name, value, labels) for labels, value in samples)

    session = agent.session.status
    metric(
        "community_edge_mqtt_connected",
        "gauge",
        "1 while connected to the broker",
        [({}, 1.0 if session.connected else 0.0)],
    )
    metric(
        "community_edge_mqtt_reconnects_total",
        "counter",
        "connections lost and retried",
        [({}, session.reconnects)],
    )
    metric(
        "community_edge_mqtt_empty_sessions_total",
        "counter",
        "reconnects where the broker had lost our session",
        [({}, session.empty_sessions)],
    )
    metric(
        "community_edge_mqtt_unacked",
        "gauge",
        "messages received and not yet acknowledged",
        [({}, session.unacked)],
    )
    metric(
        "community_edge_messages_acked_total",
        "counter",
        "messages acknowledged after commit",
        [({}, agent.acked)],
    )
    metric(
        "community_edge_readings_total",
        "counter",
        "messages decoded into readings",
        [({}, agent.pipeline.readings)],
    )
    metric(
        "community_edge_dead_letters_total",
        "counter",
        "messages kept as dead letters, by cause",
        [({"cause": c}, n) for c, n in sorted(agent.pipeline.dead_letters_by_cause.items())],
    )
    depths = await agent.outbox.depths()
    metric(
        "community_edge_outbox_depth",
        "gauge",
        "entries not yet delivered, per sink and lane",
        [({"sink": d.sink, "lane": d.lane}, d.depth) for d in depths],
    )
    metric(
        "community_edge_outbox_oldest_age_seconds",
        "gauge",
        "age of the oldest undelivered entry, per sink and lane",
        [({"sink": d.sink, "lane": d.lane}, round(d.oldest_age_s, 3)) for d in depths],
    )
    metric(
        "community_edge_outbox_shed_readings_total",
        "counter",
        "routine readings shed at the outbox size cap",
        [({}, agent.outbox.shed_readings)],
    )
    metric(
        "community_edge_sink_errors_total",
        "counter",
        "failed delivery attempts, per sink",
        [({"sink": f.sink.name}, f.status.errors) for f in agent.forwarders],
    )
    metric(
        "community_edge_sink_rejected_total",
        "counter",
        "entries a sink refused as invalid",
        [({"sink": f.sink.name}, f.status.rejected) for f in agent.forwarders],
    )
    metric(
        "community_edge_open_alerts",
        "gauge",
        "alerts active or acknowledged",
        [({}, len(agent.alerts))],
    )
    return "\n".join(out) + "\n"
