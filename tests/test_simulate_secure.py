"""The simulators reach a secured broker the way the agent does: one URL parser (`mqtts://`,
credentials) and the agent's TLS settings (CA, client certificate), against a real mosquitto.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge.ingest import BrokerAddress, TlsConfig, parse_mqtt_url
from gateway.cli import main
from simulators.load import broker_address, run_load, run_scenario
from tests.certs import Authority, Issued
from tests.servers import HOST, MosquittoServer, TlsListener, find_binary

pytestmark = pytest.mark.broker

USER, PASSWORD = "simulator", "p@ss:w/rd"  # characters a URL must percent-encode
URL_PASSWORD = "p%40ss%3Aw%2Frd"


@dataclass(frozen=True)
class SecureBroker:
    server: MosquittoServer
    ca: Authority
    client: Issued  # CN simulator, for the listener that takes the certificate's CN as user

    @property
    def password_port(self) -> int:
        return self.server.tls_ports[0]

    @property
    def certificate_port(self) -> int:
        return self.server.tls_ports[1]


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    directory = tmp_path_factory.mktemp("secure-sim")
    ca = Authority(directory, "community")
    password_file = directory / "passwd"
    passwd = find_binary("mosquitto_passwd", "mosquitto")
    subprocess.run([passwd, "-c", "-b", str(password_file), USER, PASSWORD], check=True)
    server_cert = ca.issue("broker", server=True)
    cert, key = server_cert.cert_file, server_cert.key_file
    with MosquittoServer(
        tls_listeners=[
            TlsListener(ca.ca_file, cert, key),
            TlsListener(
                ca.ca_file, cert, key, require_certificate=True, use_identity_as_username=True
            ),
        ],
        password_file=password_file,
    ) as server:
        yield SecureBroker(server, ca, ca.issue(USER))


def test_the_simulators_parse_urls_as_the_agent_does() -> None:
    url = f"mqtts://{USER}:{URL_PASSWORD}@broker.local:8884"
    assert broker_address(url) == parse_mqtt_url(url)
    address = broker_address(url)
    assert (address.host, address.port, address.username) == ("broker.local", 8884, USER)
    assert address.password == PASSWORD
    assert address.tls == TlsConfig()
    assert PASSWORD not in str(address)
    assert URL_PASSWORD not in str(address)
    assert broker_address("mqtt://[::1]") == BrokerAddress("::1", 1883)
    given = BrokerAddress("h", 1, tls=TlsConfig(Path("ca.pem")))
    assert broker_address(given) is given
    with pytest.raises(ValueError, match=r"\*\*\*"):  # the password is never shown
        broker_address(f"mqtts://{USER}:{URL_PASSWORD}@broker.local:8884/path")
    with pytest.raises(ValueError, match="use mqtts://"):
        broker_address("mqtt://broker.local", ca_file=Path("ca.pem"))


def test_load_reaches_a_broker_with_tls_and_a_password(secure_broker: SecureBroker) -> None:
    url = f"mqtts://{USER}:{URL_PASSWORD}@{HOST}:{secure_broker.password_port}"
    address = broker_address(url, ca_file=secure_broker.ca.ca_file)
    result = run_load(address, devices=5, rate=500, duration=1, messages=40)
    assert (result.sent, result.failed) == (40, 0)


def test_a_scenario_reaches_a_broker_with_a_client_certificate(
    secure_broker: SecureBroker,
) -> None:
    address = broker_address(
        f"mqtts://{HOST}:{secure_broker.certificate_port}",
        ca_file=secure_broker.ca.ca_file,
        cert_file=secure_broker.client.cert_file,
        key_file=secure_broker.client.key_file,
    )
    result = run_scenario(address, "elder-sos", delay_scale=0.0)
    assert result.failed == 0
    assert result.sent >= 1


def test_a_wrong_password_is_refused_by_name(secure_broker: SecureBroker) -> None:
    address = BrokerAddress(
        HOST, secure_broker.password_port, USER, "wrong", TlsConfig(secure_broker.ca.ca_file)
    )
    with pytest.raises(ConnectionError, match="refused") as raised:
        run_load(address, devices=1, rate=10, duration=1, messages=1)
    assert "wrong" not in str(raised.value)


def test_community_edge_simulate_takes_an_mqtts_url_with_credentials(
    secure_broker: SecureBroker,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # `mqtts://` trusts the system's CAs; OpenSSL's SSL_CERT_FILE makes ours one of them
    monkeypatch.setenv("SSL_CERT_FILE", str(secure_broker.ca.ca_file))
    url = f"mqtts://{USER}:{URL_PASSWORD}@{HOST}:{secure_broker.password_port}"
    args = ["simulate", "--mqtt-url", url, "--devices", "3", "--messages", "12", "--json"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert (summary["sent"], summary["failed"]) == (12, 0)
    assert PASSWORD not in out + err
    assert URL_PASSWORD not in out + err


def test_community_edge_simulate_takes_a_ca_and_a_client_certificate(
    secure_broker: SecureBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "simulate",
        "--mqtt-url",
        f"mqtts://{HOST}:{secure_broker.certificate_port}",
        "--mqtt-ca-file",
        str(secure_broker.ca.ca_file),
        "--mqtt-cert-file",
        str(secure_broker.client.cert_file),
        "--mqtt-key-file",
        str(secure_broker.client.key_file),
        "--devices",
        "2",
        "--messages",
        "5",
        "--json",
    ]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["sent"], summary["failed"]) == (5, 0)


def test_a_certificate_without_mqtts_is_a_one_line_mistake(
    secure_broker: SecureBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["simulate", "--mqtt-url", f"mqtt://{HOST}:1", "--mqtt-ca-file", "ca.pem"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("community-edge simulate: ")
    assert len(err.splitlines()) == 1
