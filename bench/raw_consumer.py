"""A raw paho-mqtt QoS 1 consumer that does nothing but count, in a process of its own.

`python -m bench.raw_consumer --flavour F --host H --port P --client-id C --topic T setup` creates
its persistent session and subscription; `... drain --expected N` connects to it and prints one
JSON line, `{"received": N, "seconds": S}`, S from CONNACK to the N-th message. Each flavour runs
in a fresh process, so what one imports (the agent's patched property parsing) never speeds up
another, and each is measured as a user would run it.

Flavours: `mqtt311` (paho over MQTT 3.1.1: no properties to parse at all), `mqtt5` (stock paho
over MQTT 5), `mqtt5-agent` (paho over MQTT 5 with the property parsing the agent installs,
`edge.ingest`'s shared property tables).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

FLAVOURS = ("mqtt311", "mqtt5", "mqtt5-agent")
RECEIVE_MAXIMUM = 2000  # as the agent asks (settings `mqtt.receive_maximum`)
SESSION_EXPIRY_S = 3600


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.raw_consumer")
    parser.add_argument("--flavour", choices=FLAVOURS, required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--expected", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("mode", choices=("setup", "drain"))
    args = parser.parse_args(argv)
    if args.flavour == "mqtt5-agent":
        import edge.ingest  # noqa: F401  # installs the agent's shared MQTT 5 property tables
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    v5 = args.flavour != "mqtt311"
    connected, subscribed, done = threading.Event(), threading.Event(), threading.Event()
    state = {"received": 0, "connected_at": 0.0, "done_at": 0.0, "cpu_at_connect": 0.0}

    def on_connect(*_: Any) -> None:
        state["connected_at"] = time.monotonic()
        # the drain's CPU, not the interpreter's start and imports
        state["cpu_at_connect"] = time.process_time()
        connected.set()

    def on_message(*_: Any) -> None:
        state["received"] += 1  # only paho's network thread writes it
        if state["received"] == args.expected:
            state["done_at"] = time.monotonic()
            done.set()

    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=args.client_id,
        protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
        # 3.1.1 has no session expiry: a persistent session is `clean_session=False`
        clean_session=None if v5 else False,
    )
    client.on_connect = on_connect
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = on_message
    if v5:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        client.connect(args.host, args.port, clean_start=False, properties=properties)
    else:
        client.connect(args.host, args.port)
    client.loop_start()
    try:
        if not connected.wait(10):
            print(json.dumps({"error": "no CONNACK"}))
            return 1
        if args.mode == "setup":
            client.subscribe(args.topic, qos=1)
            if not subscribed.wait(10):
                print(json.dumps({"error": "no SUBACK"}))
                return 1
            print(json.dumps({"received": 0, "seconds": 0.0}))
            return 0
        if not done.wait(args.timeout):
            print(json.dumps({"error": f"received {state['received']} of {args.expected}"}))
            return 1
        seconds = state["done_at"] - state["connected_at"]
        # its own CPU (every thread) since its CONNACK, read before it exits: /proc is gone
        # once it has
        cpu_s = time.process_time() - state["cpu_at_connect"]
        print(json.dumps({"received": state["received"], "seconds": seconds, "cpu_s": cpu_s}))
        return 0
    finally:
        client.disconnect()
        client.loop_stop()
        sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
