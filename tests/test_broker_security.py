"""Broker security against a real mosquitto: TLS, credentials, and the shipped per-device ACLs.

One broker for the module, configured like deploy/: a password file, deploy/mosquitto-acl.conf as
shipped, a TLS listener for devices with passwords and a TLS listener that requires a client
certificate and takes its CN as the username (the agent's). CAs and certificates are made here.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge.clock import SystemClock
from edge.ingest import BrokerAddress, Delivery, MqttSession, TlsConfig, parse_mqtt_url
from gateway.settings import ConfigurationError, MqttSettings, load_settings
from gateway.wiring import broker_address
from tests.agent_process import AgentProcess, wait_for
from tests.certs import Authority, Issued
from tests.servers import HOST, MosquittoServer, TlsListener, find_binary
from tests.waiting import wait_until

pytestmark = pytest.mark.broker

ACL_FILE = Path(__file__).parents[1] / "deploy" / "mosquitto-acl.conf"
AGENT_USER = "community-edge"  # the user deploy/mosquitto-acl.conf gives read access to ce/#
PASSWORDS = {AGENT_USER: "agent-secret-1", "sos-a": "device-a-secret", "sos-b": "device-b-secret"}
SOS = "tuya-sos-button"
PRESS = json.dumps({"action": "emergency", "battery": 80}).encode()


@dataclass(frozen=True)
class Pki:
    good: Authority
    rogue: Authority
    agent: Issued  # CN community-edge, signed by the broker's CA
    agent_rogue: Issued  # CN community-edge, signed by another CA
    agent_expired: Issued
    agent_encrypted: Issued  # key encrypted with "key-pass"


@dataclass(frozen=True)
class SecureBroker:
    server: MosquittoServer
    pki: Pki

    @property
    def password_port(self) -> int:
        return self.server.tls_ports[0]

    @property
    def certificate_port(self) -> int:
        return self.server.tls_ports[1]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    good, rogue = Authority(directory, "community"), Authority(directory, "rogue")
    return Pki(
        good=good,
        rogue=rogue,
        agent=good.issue(AGENT_USER),
        agent_rogue=rogue.issue(AGENT_USER),
        agent_expired=good.issue(AGENT_USER, expired=True),
        agent_encrypted=good.issue("encrypted", key_password="key-pass"),
    )


@pytest.fixture(scope="module")
def secure_broker(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    directory = tmp_path_factory.mktemp("broker-files")
    password_file = directory / "passwd"
    passwd = find_binary("mosquitto_passwd", "mosquitto")
    for n, (user, password) in enumerate(PASSWORDS.items()):
        create = ["-c"] if n == 0 else []
        subprocess.run([passwd, *create, "-b", str(password_file), user, password], check=True)
    server_cert = pki.good.issue("broker", server=True)
    ca, cert, key = pki.good.ca_file, server_cert.cert_file, server_cert.key_file
    with MosquittoServer(
        tls_listeners=[
            TlsListener(ca, cert, key),
            TlsListener(ca, cert, key, require_certificate=True, use_identity_as_username=True),
        ],
        password_file=password_file,
        acl_file=ACL_FILE,
    ) as server:
        yield SecureBroker(server, pki)


class Device:
    """A device (or the observer) as an MQTT client over TLS with a password, or plain TCP."""

    def __init__(
        self,
        port: int,
        username: str,
        *,
        ca_file: Path | None,
        client_id: str | None = None,
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
    ) -> None:
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or username,
            protocol=protocol,
        )
        self.client.username_pw_set(username, PASSWORDS[username])
        if ca_file is not None:
            context = ssl.create_default_context(cafile=str(ca_file))
            self.client.tls_set_context(context)
        self.messages: list[tuple[str, bytes]] = []
        self.acks: dict[int, ReasonCode] = {}
        self.granted: list[ReasonCode] = []
        self.disconnected = threading.Event()
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: self._connected.set()
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = lambda c, u, f, rc, p: self.disconnected.set()
        self.client.connect(HOST, port)
        self.client.loop_start()
        if not self._connected.wait(10):
            raise AssertionError(f"{username} could not connect")

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload)))

    def _on_publish(
        self, client: Any, userdata: Any, mid: int, reason: ReasonCode, properties: Any
    ) -> None:
        with self._lock:
            self.acks[mid] = reason

    def _on_subscribe(
        self, client: Any, userdata: Any, mid: int, codes: list[ReasonCode], properties: Any
    ) -> None:
        self.granted = list(codes)
        self._subscribed.set()

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        """Publish at QoS 1 and return the PUBACK's reason code."""
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        wait_until(lambda: info.mid in self.acks, 10, f"PUBACK for {topic}", poll=0.01)
        return self.acks[info.mid]

    def topics(self) -> list[str]:
        """The topics of the messages received so far, in arrival order."""
        with self._lock:
            return [topic for topic, _ in self.messages]

    def subscribe(self, *filters: str) -> list[ReasonCode]:
        self._subscribed.clear()
        self.client.subscribe([(f, 1) for f in filters])
        assert self._subscribed.wait(10), "no SUBACK"
        return self.granted

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def devices(secure_broker: SecureBroker) -> Iterator[list[Device]]:
    """Devices made by the test; all disconnected after it."""
    made: list[Device] = []
    yield made
    for device in made:
        device.close()


def _device(devices: list[Device], broker: SecureBroker, username: str, **kwargs: Any) -> Device:
    device = Device(broker.password_port, username, ca_file=broker.pki.good.ca_file, **kwargs)
    devices.append(device)
    return device


def _observer(devices: list[Device], broker: SecureBroker, topic_filter: str) -> Device:
    """The agent's user on the loopback listener: sees what reached a subscriber with ce/# rights."""
    observer = Device(
        broker.server.port, AGENT_USER, ca_file=None, client_id=f"observer-{time.monotonic_ns()}"
    )
    devices.append(observer)
    assert [c.value for c in observer.subscribe(topic_filter)] == [1]
    return observer


@pytest.fixture(scope="module")
def agent(
    secure_broker: SecureBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AgentProcess]:
    """`community-edge run` over TLS with the client certificate (the CN is its username)."""
    pki = secure_broker.pki
    process = AgentProcess(
        tmp_path_factory.mktemp("agent") / "data",
        f"mqtts://{HOST}:{secure_broker.certificate_port}",
        env={
            "COMMUNITY_EDGE_MQTT__TLS__CA_FILE": str(pki.good.ca_file),
            "COMMUNITY_EDGE_MQTT__TLS__CERT_FILE": str(pki.agent.cert_file),
            "COMMUNITY_EDGE_MQTT__TLS__KEY_FILE": str(pki.agent.key_file),
        },
    )
    with process:
        yield process


# -- the agent over TLS -------------------------------------------------------------------------


def test_agent_over_tls_with_a_client_certificate_raises_a_device_sos(
    agent: AgentProcess, secure_broker: SecureBroker, devices: list[Device]
) -> None:
    mqtt_health = agent.get("/healthz")["mqtt"]
    assert mqtt_health["broker"] == f"mqtts://{HOST}:{secure_broker.certificate_port}"
    assert {s["connected"] for s in mqtt_health["sessions"].values()} == {True}
    device = _device(devices, secure_broker, "sos-a")
    assert device.publish(f"ce/tls-e2e/b1/{SOS}/sos-a", PRESS).value == 0
    alerts = wait_for(
        lambda: agent.get("/v1/alerts", community="tls-e2e")["items"], what="the SOS alert"
    )
    assert [(a["rule"], a["device_id"]) for a in alerts] == [("sos", "sos-a")]


# -- the ACL: a device writes only its own topics -------------------------------------------------


def test_a_device_publishing_on_another_devices_topic_never_reaches_the_agent(
    agent: AgentProcess, secure_broker: SecureBroker, devices: list[Device]
) -> None:
    community = "acl-forge"
    observer = _observer(devices, secure_broker, f"ce/{community}/#")
    a = _device(devices, secure_broker, "sos-a")
    a_v311 = _device(
        devices,
        secure_broker,
        "sos-a",
        client_id="sos-a-v311",
        protocol=MQTTProtocolVersion.MQTTv311,
    )
    forged = [
        f"ce/{community}/b1/{SOS}/sos-b",  # B's own topic
        f"ce/{community}/b1/{SOS}/sos-b/availability",
        f"ce/{community}/b1/{SOS}/sos-a/extra",  # not one of A's two topics either
        f"ce/{community}/b1/{SOS}",
    ]
    v5_codes = [a.publish(topic, PRESS) for topic in forged]
    v311_codes = [a_v311.publish(topic, PRESS) for topic in forged]
    # what mosquitto 2.x answers a denied QoS 1 publish, and that it keeps the client connected
    assert [(c.value, str(c)) for c in v5_codes] == [(0x87, "Not authorized")] * 4
    assert [c.value for c in v311_codes] == [0] * 4  # MQTT 3.1.1: a plain PUBACK
    assert not a.disconnected.is_set()
    assert not a_v311.disconnected.is_set()
    # then A's own topic: it arrives after the forged ones would have, on one connection
    assert a.publish(f"ce/{community}/b1/{SOS}/sos-a", PRESS).value == 0
    # A's own message is the positive marker: the broker took every forged one before it (their
    # PUBACKs came first), so one that got through would be ahead of it at the observer, and
    # ahead of it in the agent's alarm lane and outbox.
    own = f"ce/{community}/b1/{SOS}/sos-a"
    wait_for(lambda: own in observer.topics(), what="A's own message at the observer")
    wait_for(lambda: agent.get("/v1/alerts", community=community)["items"], what="A's SOS alert")
    wait_for(
        lambda: agent.get("/v1/readings", device_id="sos-a")["items"],
        what="A's reading in the reading store",
    )
    assert observer.topics() == [own]
    alerts = agent.get("/v1/alerts", community=community)["items"]
    assert [(a["rule"], a["device_id"]) for a in alerts] == [("sos", "sos-a")]
    readings = agent.get("/v1/readings", community=community)["items"]
    assert {r["device_id"] for r in readings} == {"sos-a"}
    assert agent.get("/v1/readings", device_id="sos-b")["items"] == []
    assert agent.get("/v1/dead-letters") == []
    assert agent.get("/v1/devices/unregistered") == []


def test_a_device_subscribing_to_everything_receives_nothing(
    secure_broker: SecureBroker, devices: list[Device]
) -> None:
    community = "acl-subscribe"
    observer = _observer(devices, secure_broker, f"ce/{community}/#")
    a = _device(devices, secure_broker, "sos-a")
    granted = a.subscribe("#", "ce/#", f"ce/{community}/b1/{SOS}/sos-b")
    # the acl_file does not judge subscriptions: SUBACK grants QoS 1 to all three ...
    assert [c.value for c in granted] == [1, 1, 1]
    b = _device(devices, secure_broker, "sos-b")
    for n in range(3):
        assert b.publish(f"ce/{community}/b1/{SOS}/sos-b", PRESS).value == 0, n
    assert a.publish(f"ce/{community}/b1/{SOS}/sos-a", PRESS).value == 0
    wait_for(lambda: len(observer.messages) == 4, what="4 messages at the observer")
    # A may read nothing, so no marker can reach it through the ACL; the nearest is a round trip
    # on its own connection: the broker wrote anything routed to A before this SUBACK.
    assert [c.value for c in a.subscribe(f"ce/{community}/marker")] == [1]
    # ... but each message is checked against A's read rights before delivery: none reaches it
    assert a.messages == []
    assert len(observer.messages) == 4


def test_a_client_certificate_cn_is_the_username_the_acl_binds(
    secure_broker: SecureBroker, devices: list[Device], tmp_path: Path
) -> None:
    """use_identity_as_username: a device with a certificate for sos-a writes only as sos-a."""
    community = "acl-cert"
    observer = _observer(devices, secure_broker, f"ce/{community}/#")
    issued = secure_broker.pki.good.issue("sos-a")
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="sos-a",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    context = ssl.create_default_context(cafile=str(secure_broker.pki.good.ca_file))
    context.load_cert_chain(str(issued.cert_file), str(issued.key_file))
    client.tls_set_context(context)
    acks: dict[int, int] = {}
    client.on_publish = lambda c, u, mid, rc, p: acks.__setitem__(mid, rc.value)
    client.connect(HOST, secure_broker.certificate_port)
    client.loop_start()
    try:
        forged = client.publish(f"ce/{community}/b1/{SOS}/sos-b", PRESS, qos=1)
        own = client.publish(f"ce/{community}/b1/{SOS}/sos-a", PRESS, qos=1)
        own.wait_for_publish(10)
        forged.wait_for_publish(10)
        wait_for(lambda: len(acks) == 2, what="two PUBACKs")
        assert acks == {forged.mid: 0x87, own.mid: 0}
        # the own message, sent after the forged one on one connection, is the positive marker
        own_topic = f"ce/{community}/b1/{SOS}/sos-a"
        wait_for(lambda: own_topic in observer.topics(), what="the device's own message")
        assert observer.topics() == [own_topic]
    finally:
        client.disconnect()
        client.loop_stop()


def test_the_acl_does_not_bind_the_client_id(
    secure_broker: SecureBroker, devices: list[Device]
) -> None:
    """What the ACL does not guarantee: A may take B's client id and so end B's connection,
    though it still writes only as A (documented in README "Securing the broker")."""
    community = "acl-client-id"
    observer = _observer(devices, secure_broker, f"ce/{community}/#")
    b = _device(devices, secure_broker, "sos-b")
    impostor = _device(devices, secure_broker, "sos-a", client_id="sos-b")
    assert b.disconnected.wait(10), "B's connection was not taken over"
    assert impostor.publish(f"ce/{community}/b1/{SOS}/sos-b", PRESS).value == 0x87
    assert impostor.publish(f"ce/{community}/b1/{SOS}/sos-a", PRESS).value == 0
    # its own message, sent after the forged one on one connection, is the positive marker
    own = f"ce/{community}/b1/{SOS}/sos-a"
    wait_for(lambda: own in observer.topics(), what="the impostor's own message")
    assert observer.topics() == [own]


# -- TLS and authentication failures: reported as such, retried -----------------------------------


def _session(address: BrokerAddress) -> MqttSession:
    def drop(delivery: Delivery) -> None:
        raise AssertionError(f"no message expected: {delivery.topic}")

    return MqttSession(
        address,
        f"security-{time.monotonic_ns()}",
        ["ce/none/#"],
        drop,
        clock=SystemClock(),
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
    )


async def _failures(session: MqttSession, attempts: int = 3) -> str:
    """Run the session until `attempts` connections failed; return its last error."""
    task = asyncio.create_task(session.run())
    try:
        for _ in range(400):
            if session.status.failed_connects >= attempts:
                break
            await asyncio.sleep(0.025)
        assert session.status.failed_connects >= attempts, session.status
        assert session.status.connects == 0
        assert session.status.last_error is not None
        return session.status.last_error
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _tls_address(port: int, tls: TlsConfig, user: str | None = None) -> BrokerAddress:
    password = PASSWORDS.get(user or "")
    return BrokerAddress(HOST, port, user, password, tls)


async def test_a_broker_certificate_from_another_ca_is_a_tls_error_retried(
    secure_broker: SecureBroker, caplog: pytest.LogCaptureFixture
) -> None:
    pki = secure_broker.pki
    tls = TlsConfig(pki.rogue.ca_file, pki.agent.cert_file, pki.agent.key_file)
    error = await _failures(_session(_tls_address(secure_broker.certificate_port, tls)))
    assert error == (
        "TLS: the broker's certificate is not accepted: self-signed certificate in certificate "
        f"chain (broker mqtts://{HOST}:{secure_broker.certificate_port})"
    )
    logged = [r.getMessage() for r in caplog.records if r.name == "edge.ingest.session"]
    assert logged == [error]  # once, not once per attempt


@pytest.mark.parametrize(
    ("which", "expected"),
    [
        ("none", "TLS: the broker requires a client certificate"),
        ("rogue", "TLS: the broker does not trust our client certificate's CA"),
        ("expired", "TLS: the broker says our client certificate has expired"),
    ],
)
async def test_a_client_certificate_the_broker_refuses_is_a_tls_error_retried(
    secure_broker: SecureBroker, which: str, expected: str
) -> None:
    pki = secure_broker.pki
    tls = {
        "none": TlsConfig(pki.good.ca_file),
        "rogue": TlsConfig(pki.good.ca_file, pki.agent_rogue.cert_file, pki.agent_rogue.key_file),
        "expired": TlsConfig(
            pki.good.ca_file, pki.agent_expired.cert_file, pki.agent_expired.key_file
        ),
    }[which]
    error = await _failures(_session(_tls_address(secure_broker.certificate_port, tls)))
    assert error.startswith(expected), error


async def test_a_wrong_password_is_an_authentication_error_retried(
    secure_broker: SecureBroker, caplog: pytest.LogCaptureFixture
) -> None:
    tls = TlsConfig(secure_broker.pki.good.ca_file)
    address = BrokerAddress(HOST, secure_broker.password_port, AGENT_USER, "wrong-password", tls)
    session = _session(address)
    error = await _failures(session)
    assert error == (
        f"authentication: broker mqtts://{AGENT_USER}@{HOST}:{secure_broker.password_port} "
        f"refused client {session.client_id!r} as user {AGENT_USER!r}: Not authorized"
    )
    assert "wrong-password" not in caplog.text
    assert "wrong-password" not in repr(address)


async def test_an_unknown_user_and_no_user_are_authentication_errors(
    secure_broker: SecureBroker,
) -> None:
    tls = TlsConfig(secure_broker.pki.good.ca_file)
    nobody = BrokerAddress(HOST, secure_broker.password_port, "nobody", "x", tls)
    assert "as user 'nobody': " in await _failures(_session(nobody), attempts=1)
    anonymous = BrokerAddress(HOST, secure_broker.password_port, None, None, tls)
    assert "without a username: " in await _failures(_session(anonymous), attempts=1)


def test_the_agent_keeps_retrying_a_tls_error_and_recovers_when_the_ca_file_is_fixed(
    secure_broker: SecureBroker, tmp_path: Path
) -> None:
    """The CA file is read again at every attempt: a fixed or renewed file needs no restart."""
    pki = secure_broker.pki
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(pki.rogue.ca_file.read_bytes())
    process = AgentProcess(
        tmp_path / "data",
        f"mqtts://{HOST}:{secure_broker.password_port}",
        env={
            "COMMUNITY_EDGE_MQTT__TLS__CA_FILE": str(ca_file),
            "COMMUNITY_EDGE_MQTT__USERNAME": AGENT_USER,
            "COMMUNITY_EDGE_MQTT__PASSWORD": PASSWORDS[AGENT_USER],
        },
    )
    process.start(wait_ready=False)
    try:

        def tls_errors() -> list[str]:
            sessions = process.get("/healthz")["mqtt"]["sessions"].values()
            return [s["last_error"] for s in sessions if (s["last_error"] or "").startswith("TLS:")]

        errors = wait_for(lambda: len(tls_errors()) == 2 and tls_errors(), what="TLS errors")
        assert all("self-signed certificate in certificate chain" in e for e in errors)
        ca_file.write_bytes(pki.good.ca_file.read_bytes())
        process.wait_ready(within_s=30)

        def both_connected() -> bool:
            sessions = process.get("/healthz")["mqtt"]["sessions"].values()
            return {s["connected"] for s in sessions} == {True}

        # each lane reconnects on its own backoff: ready may be seen between the two
        wait_for(both_connected, within_s=30, what="both sessions connected over TLS")
        log = process.log_path.read_text()
        assert PASSWORDS[AGENT_USER] not in log
        assert log.count("TLS: the broker's certificate is not accepted") == 2  # once a session
    finally:
        assert process.stop() == 0


# -- configuration errors: one line, before anything starts ---------------------------------------


def _mqtt(**values: Any) -> MqttSettings:
    return MqttSettings.model_validate(values)


def test_tls_files_that_cannot_be_used_are_configuration_errors(pki: Pki, tmp_path: Path) -> None:
    url = "mqtts://broker.local"
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"ca_file": tmp_path / "nope.pem"},
            f"mqtt.tls: ca_file {tmp_path / 'nope.pem'}: cannot read: No such file or directory",
        ),
        (
            {"ca_file": pki.agent.key_file},
            f"mqtt.tls: ca_file {pki.agent.key_file}: not a PEM CA certificate",
        ),
        (
            {"cert_file": pki.agent.cert_file},
            f"mqtt.tls: cert_file {pki.agent.cert_file} holds no private key and no key_file is given",
        ),
        (
            {"cert_file": pki.agent.cert_file, "key_file": pki.agent_rogue.key_file},
            f"mqtt.tls: the key in {pki.agent_rogue.key_file} does not belong to the certificate",
        ),
        (
            {"cert_file": pki.agent_encrypted.cert_file, "key_file": pki.agent_encrypted.key_file},
            f"mqtt.tls: cannot decrypt the key in {pki.agent_encrypted.key_file}: wrong or missing",
        ),
        (
            {
                "cert_file": pki.agent_encrypted.cert_file,
                "key_file": pki.agent_encrypted.key_file,
                "key_password": "not-it",
            },
            "mqtt.tls: cannot decrypt the key",
        ),
    ]
    for tls, expected in cases:
        with pytest.raises(ConfigurationError) as caught:
            broker_address(_mqtt(url=url, tls=tls))
        assert str(caught.value).startswith(expected), (tls, str(caught.value))
        assert "not-it" not in str(caught.value)
    good = broker_address(
        _mqtt(
            url=url,
            tls={
                "cert_file": pki.agent_encrypted.cert_file,
                "key_file": pki.agent_encrypted.key_file,
                "key_password": "key-pass",
            },
        )
    )
    assert good.tls is not None
    assert good.port == 8883
    assert "key-pass" not in repr(good)


def test_credentials_and_tls_settings(tmp_path: Path) -> None:
    address = broker_address(
        _mqtt(url="mqtts://gw.local:9883", username="community-edge", password="s3cret")
    )
    assert (address.host, address.port, address.username, address.password) == (
        "gw.local",
        9883,
        "community-edge",
        "s3cret",
    )
    assert str(address) == "mqtts://community-edge@gw.local:9883"
    assert "s3cret" not in repr(address)
    # URL credentials are percent-decoded; a plain URL has no TLS
    url = parse_mqtt_url("mqtt://edge%40gw:p%3Ass%40@127.0.0.1")
    assert (url.username, url.password, url.port, url.tls) == ("edge@gw", "p:ss@", 1883, None)
    problems: dict[str, dict[str, Any]] = {
        "mqtt.tls is set but mqtt.url is mqtt://; use mqtts://": {
            "url": "mqtt://127.0.0.1",
            "tls": {"ca_file": str(tmp_path / "ca.pem")},
        },
        "give the user either in mqtt.url or as mqtt.username, not both": {
            "url": "mqtt://a:b@127.0.0.1",
            "username": "c",
        },
        "mqtt.password needs a user (mqtt.username)": {"password": "hidden-pw"},
        "key_file and key_password need a cert_file": {
            "url": "mqtts://127.0.0.1",
            "tls": {"key_file": "k.pem"},
        },
        "broker URL 'mqtt://u:***@h:bad' has an invalid port": {"url": "mqtt://u:hidden-pw@h:bad"},
    }
    for message, values in problems.items():
        with pytest.raises(ConfigurationError) as caught:
            load_settings(overrides={f"mqtt.{k}": v for k, v in values.items()})
        assert message in str(caught.value), str(caught.value)
        assert "hidden-pw" not in str(caught.value)
    with pytest.raises(ConfigurationError, match=r"mqtt\.username"):
        load_settings(overrides={"mqtt.username": "a/b"})
