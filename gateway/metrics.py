"""Prometheus text exposition of the agent's counters and gauges (no personal data in labels)."""

from __future__ import annotations

from edge.agent import Agent
from edge.sinks import Channel, PhoneSink, RobotSink
from gateway.disk import DiskWatch
from gateway.retention import Retention

Sample = tuple[dict[str, str], float]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def _line(name: str, labels: dict[str, str], value: float) -> str:
    if not labels:
        return f"{name} {value}"
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}} {value}"


async def render_metrics(
    agent: Agent, disk: DiskWatch | None = None, retention: Retention | None = None
) -> str:
    lanes = agent.lanes
    depths = await agent.outbox.depths()
    pipeline = agent.pipeline
    source = agent.registry_file
    channels = [f.sink for f in agent.forwarders if isinstance(f.sink, Channel)]
    families: list[tuple[str, str, str, list[Sample]]] = [
        (
            "community_edge_mqtt_connected",
            "gauge",
            "1 while the lane's MQTT session is connected",
            [({"lane": x.name}, float(x.session.status.connected)) for x in lanes],
        ),
        (
            "community_edge_mqtt_reconnects_total",
            "counter",
            "connections lost and retried",
            [({"lane": x.name}, x.session.status.reconnects) for x in lanes],
        ),
        (
            "community_edge_mqtt_empty_sessions_total",
            "counter",
            "reconnects where the broker had lost our session (queued messages may be lost)",
            [({"lane": x.name}, x.session.status.empty_sessions) for x in lanes],
        ),
        (
            "community_edge_mqtt_broker_restarts_total",
            "counter",
            "broker restarts seen under a session it gave back from its last save (messages "
            "after that save may be lost)",
            [({"lane": x.name}, x.session.status.broker_restarts) for x in lanes],
        ),
        (
            "community_edge_mqtt_unacked",
            "gauge",
            "messages received and not yet acknowledged",
            [({"lane": x.name}, x.session.status.unacked) for x in lanes],
        ),
        (
            "community_edge_messages_acked_total",
            "counter",
            "messages acknowledged to the broker after their commit",
            [({"lane": x.name}, x.acked) for x in lanes],
        ),
        (
            "community_edge_lane_commits_total",
            "counter",
            "outbox transactions (each an fsync) an ingest lane committed: messages acked / "
            "commits is its batch size",
            [({"lane": x.name}, x.batches) for x in lanes],
        ),
        (
            "community_edge_shard_dropped_total",
            "counter",
            "messages of other shards' buildings, acknowledged unread (run --shards, shard.count)",
            [({"shard": str(agent.shard)}, agent.shard_filter.dropped)],
        ),
        (
            "community_edge_redeliveries_total",
            "counter",
            "messages the broker sent again after their results were committed (a lost ack): "
            "acknowledged, not handled again",
            [({"lane": x.name}, x.receipts.redelivered) for x in lanes],
        ),
        (
            "community_edge_agent_stalls_total",
            "counter",
            "times the agent's own timers woke 2 s or more late (the process paused or starved)",
            [({}, agent.monitor.stalls)],
        ),
        (
            "community_edge_agent_stalled_seconds_total",
            "counter",
            "total length of those stalls; not counted as broker or device silence",
            [({}, round(agent.monitor.stalled_s, 3))],
        ),
        (
            "community_edge_clock_steps_total",
            "counter",
            "times the wall clock moved 2 s or more apart from the monotonic clock",
            [({}, agent.monitor.clock_steps)],
        ),
        (
            "community_edge_readings_total",
            "counter",
            "messages decoded into readings",
            [({}, pipeline.readings)],
        ),
        (
            "community_edge_dead_letters_total",
            "counter",
            "messages kept as dead letters, by cause",
            [({"cause": c}, n) for c, n in sorted(pipeline.dead_letters_by_cause.items())],
        ),
        (
            "community_edge_device_repeats_total",
            "counter",
            "events devices sent again (same sequence number and device time): stored and "
            "counted once",
            [({}, pipeline.device_repeats)],
        ),
        (
            "community_edge_readings_flagged_total",
            "counter",
            "readings whose device time was replaced by the receive time, or whose payload "
            "named another device than its topic, by flag",
            [({"flag": f.value}, n) for f, n in sorted(pipeline.flagged.items())],
        ),
        (
            "community_edge_sequence_gaps_total",
            "counter",
            "messages devices numbered that never reached the gateway",
            [({}, pipeline.sequence_gaps)],
        ),
        (
            "community_edge_outbox_depth",
            "gauge",
            "entries not yet delivered, per sink and lane",
            [({"sink": d.sink, "lane": d.lane}, d.depth) for d in depths],
        ),
        (
            "community_edge_outbox_oldest_age_seconds",
            "gauge",
            "age of the oldest undelivered entry, per sink and lane",
            [({"sink": d.sink, "lane": d.lane}, round(d.oldest_age_s, 3)) for d in depths],
        ),
        (
            "community_edge_outbox_shed_readings_total",
            "counter",
            "routine readings shed at the outbox size cap",
            [({}, agent.outbox.shed_readings)],
        ),
        (
            "community_edge_outbox_recovered",
            "gauge",
            "1 if a corrupt outbox was moved aside at start",
            [({}, float(agent.outbox.recovered_from is not None))],
        ),
        (
            "community_edge_sink_errors_total",
            "counter",
            "failed delivery attempts, per sink",
            [({"sink": f.sink.name}, f.status.errors) for f in agent.forwarders],
        ),
        (
            "community_edge_sink_rejected_total",
            "counter",
            "entries a sink refused as invalid",
            [({"sink": f.sink.name}, f.status.rejected) for f in agent.forwarders],
        ),
        (
            "community_edge_sink_writes_total",
            "counter",
            "batches written to each sink (each a request or a transaction)",
            [({"sink": f.sink.name}, f.status.writes) for f in agent.forwarders],
        ),
        (
            "community_edge_sink_delivered_total",
            "counter",
            "entries delivered, per sink",
            [({"sink": f.sink.name}, f.status.delivered) for f in agent.forwarders],
        ),
        (
            "community_edge_channel_sent_total",
            "counter",
            "alert events a notification channel sent (its route took them)",
            [({"sink": c.name}, c.sent) for c in channels],
        ),
        (
            "community_edge_channel_skipped_total",
            "counter",
            "alert events a notification channel skipped (route, or notify off)",
            [({"sink": c.name}, c.skipped) for c in channels],
        ),
        (
            "community_edge_channel_summaries_total",
            "counter",
            "summaries sent to one person in place of a flood (per-person rate of reach)",
            [({"sink": c.name}, c.summaries_sent) for c in channels],
        ),
        (
            "community_edge_escalation_unreached_total",
            "counter",
            "escalation steps that reached nobody (nobody on duty, no channel, all failing)",
            [({}, agent.alerts.unreached.count)],
        ),
        (
            "community_edge_channel_paced_seconds_total",
            "counter",
            "time a group-robot channel waited for its rate limit (how far behind it was)",
            [
                ({"sink": c.name}, c.sink.rate.waited_s)
                for c in channels
                if isinstance(c.sink, RobotSink)
            ],
        ),
        (
            "community_edge_phone_sends_total",
            "counter",
            "SMS and calls per phone channel, by result: sent (the provider took it), failed "
            "(retried), rejected (a number the provider refused for good), unreached (an alarm "
            "that reached nobody)",
            [
                ({"sink": c.name, "result": result}, getattr(c.sink, result))
                for c in channels
                if isinstance(c.sink, PhoneSink)
                for result in ("sent", "failed", "rejected", "unreached")
            ],
        ),
        (
            "community_edge_devices",
            "gauge",
            "devices by liveness status (offline: silent past the model's heartbeat interval)",
            [({"status": k}, v) for k, v in agent.liveness.counts().items()],
        ),
        (
            "community_edge_unregistered_topics",
            "gauge",
            "topics with messages from unknown devices or that no profile claims",
            [({}, len(pipeline.unregistered))],
        ),
        (
            "community_edge_unregistered_overflow_total",
            "counter",
            "such messages on topics beyond the listed bound (still dead letters)",
            [({}, pipeline.unregistered.overflow)],
        ),
        (
            "community_edge_registry_reloads_total",
            "counter",
            "device registry reloads, by result",
            [
                ({"result": "ok"}, source.reloads if source else 0),
                ({"result": "failed"}, source.failures if source else 0),
            ],
        ),
        (
            "community_edge_open_alerts",
            "gauge",
            "alerts active or acknowledged",
            [({}, len(agent.alerts))],
        ),
    ]
    if disk is not None:
        usage = disk.usage()
        families += [
            (
                "community_edge_data_dir_bytes",
                "gauge",
                "bytes of each store in the data dir (its WAL included)",
                [({"file": name}, size) for name, size in sorted(usage.stores.items())],
            ),
            (
                "community_edge_disk_free_bytes",
                "gauge",
                "bytes free on the data dir's filesystem",
                [({}, usage.free_bytes)],
            ),
            (
                "community_edge_disk_total_bytes",
                "gauge",
                "size of the data dir's filesystem",
                [({}, usage.total_bytes)],
            ),
        ]
    families += _household_families(agent)
    if retention is not None:
        families.append(
            (
                "community_edge_retention_deleted_total",
                "counter",
                "records deleted past their retention, by kind",
                [({"kind": k}, v) for k, v in sorted(retention.deleted.items())],
            )
        )
    out: list[str] = []
    for name, kind, help_text, samples in families:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(_line(name, labels, value) for labels, value in samples)
    return "\n".join(out) + "\n"


def _household_families(agent: Agent) -> list[tuple[str, str, str, list[Sample]]]:
    """The household register and its away dates (counts only: no place in a label)."""
    now = agent.clock.now()
    problem = agent.households.problem or agent.visits.problem
    return [
        (
            "community_edge_households",
            "gauge",
            "households in the register",
            [({}, agent.households.count())],
        ),
        (
            "community_edge_households_away",
            "gauge",
            "households away by their record's date (hospital, visiting family)",
            [({}, len(agent.households.away(now)))],
        ),
        (
            "community_edge_households_returned_total",
            "counter",
            "households brought back by their away date since start",
            [({}, agent.away_keeper.returned)],
        ),
        (
            "community_edge_household_store_problem",
            "gauge",
            "1 when households.db or visits.db was unreadable and set aside at start",
            [({}, float(problem is not None))],
        ),
    ]


def merge_shards(own: str, siblings: list[tuple[str, str | None]], own_name: str) -> str:
    """Shard 0's exposition with its siblings' merged in (`run --shards N`): each sample labelled
    with its shard (`shard="shard-1"`; a sample that already names its shard keeps its label),
    each family once, and `community_edge_shard_up` saying which shards answered."""
    families: dict[str, list[str]] = {}  # name -> HELP, TYPE, then samples of every shard
    for shard, text in [(own_name, own), *siblings]:
        if text is None:
            continue
        name = ""
        for line in text.splitlines():
            if line.startswith("# HELP ") or line.startswith("# TYPE "):
                name = line.split(" ", 3)[2]
                header = families.setdefault(name, [])
                if line not in header:
                    header.append(line)
            elif line and not line.startswith("#"):
                families.setdefault(name, []).append(_with_shard(line, shard))
    up = [
        ({"shard": shard}, float(text is not None)) for shard, text in [(own_name, own), *siblings]
    ]
    out = [line for lines in families.values() for line in _headers_first(lines)]
    out.append("# HELP community_edge_shard_up 1 when the shard's internal API answered")
    out.append("# TYPE community_edge_shard_up gauge")
    out.extend(_line("community_edge_shard_up", labels, value) for labels, value in up)
    return "\n".join(out) + "\n"


def _headers_first(lines: list[str]) -> list[str]:
    return [x for x in lines if x.startswith("#")] + [x for x in lines if not x.startswith("#")]


def _with_shard(sample: str, shard: str) -> str:
    """`name{a="b"} 1` -> `name{shard="shard-1",a="b"} 1`; unchanged when it names a shard."""
    name, brace, rest = sample.partition("{")
    if brace:
        if rest.startswith('shard="') or ',shard="' in rest.split("}", 1)[0]:
            return sample
        return (
            f'{name}{{shard="{_escape(shard)}",{rest}'
            if not rest.startswith("}")
            else (f'{name}{{shard="{_escape(shard)}"{rest}')
        )
    name, _, value = sample.partition(" ")
    return f'{name}{{shard="{_escape(shard)}"}} {value}'
