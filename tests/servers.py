"""Real mosquitto, VictoriaMetrics and PostgreSQL processes for integration and fault tests.

Each server runs on a free port of 127.0.0.1 inside its own temporary directory, which survives
`stop()`, `kill()` and `restart()` so that persistence can be tested; `close()` removes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import itertools
import json
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

import httpx

HOST = "127.0.0.1"
_STANDARD_PORTS = frozenset({1883, 8883, 8086, 8428, 8089, 4242, 2003, 5432})
_SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
_LOG_TAIL_LINES = 40
_probe_ids = itertools.count()


class ServerError(RuntimeError):
    """A test server could not be started, reached or stopped."""


class ServerNotInstalled(ServerError):
    """The server binary is missing; the message names the command that installs it."""


def _unhanded_ports() -> range:
    """Ports below the kernel's ephemeral range, which it never hands out by itself (to a bind to
    port 0 or to an outgoing connection's source port), so only a test that took one can use it."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return range(max(10000, low - 12000), low) if low > 11000 else range(20000, 32768)


class PortBook:
    """The TCP ports this process took for its test servers.

    A port is checked free, then bound later by the server process it is given to. Under
    pytest-xdist, with the kernel choosing (bind to port 0, then close), another worker or an
    outgoing connection could be handed the same port in between, or while a test restarts a
    server on its port. Here each port comes from below the ephemeral range and is held by an
    exclusive `flock` on a file of a directory shared by every test process on the machine (the
    workers, other checkouts' runs) until it is given back or this process ends (the kernel drops
    the lock of a dead process, so a killed run leaves nothing taken).
    """

    def __init__(self, ports: range, directory: Path) -> None:
        self._ports = ports
        self._directory = directory
        self._held: dict[int, int] = {}  # port -> file descriptor holding its lock
        self._next = ports.start + random.randrange(len(ports))  # runs start apart

    def take(self) -> int:
        """A port that nothing listens on and that no other test process holds."""
        self._directory.mkdir(mode=0o777, exist_ok=True)
        for _ in range(len(self._ports)):
            port = self._next
            self._next = port + 1 if port + 1 < self._ports.stop else self._ports.start
            if port in self._held or port in _STANDARD_PORTS:
                continue
            fd = os.open(self._directory / str(port), os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            if not _bindable(port):  # something outside these tests listens there
                os.close(fd)
                continue
            self._held[port] = fd
            return port
        raise ServerError(f"no free port in {self._ports} ({len(self._held)} held here)")

    def give_back(self, port: int) -> None:
        """Release a port taken by `take` (nothing listens on it any more)."""
        fd = self._held.pop(port, None)
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the lock


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


_PORTS = PortBook(_unhanded_ports(), Path(tempfile.gettempdir()) / "community-edge-ports")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now and that no other test process (another
    pytest-xdist worker, another run) can take until this one gives it back or ends."""
    return _PORTS.take()


def give_back_port(port: int) -> None:
    """Return a port from `free_port` once nothing of this process listens on it any more."""
    _PORTS.give_back(port)


def find_binary(name: str, package: str) -> str:
    """The binary's path: PATH first, then the sbin directories Debian installs daemons into."""
    found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(_SBIN_DIRS))
    if found is None:
        raise ServerNotInstalled(
            f"{name} is not installed (looked in PATH and {', '.join(_SBIN_DIRS)}): "
            f"install it with `apt-get install {package}`"
        )
    return found


class _Server:
    """One server process: start, stop (SIGTERM), kill (SIGKILL), restart on the same port."""

    kind = "server"
    start_timeout_s = 15.0
    stop_timeout_s = 15.0

    def __init__(self, binary: str, directory: Path | None) -> None:
        self.binary = binary
        self._owns_directory = directory is None
        self.directory = (
            Path(tempfile.mkdtemp(prefix=f"community-edge-{self.kind}-"))
            if directory is None
            else directory
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path = self.directory / "server.log"
        self._process: subprocess.Popen[bytes] | None = None

    # -- to be provided by each server ------------------------------------------------------

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _answers(self) -> bool:
        """True once the server really serves requests on its port."""
        raise NotImplementedError

    def _user(self) -> str | None:
        """The user to run the process as (None: this one)."""
        return None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise ServerError(f"{self.kind} on port {self.port} is not started")
        return self._process.pid

    def start(self) -> None:
        """Start the process and wait, bounded, until its port answers."""
        if self.running:
            raise ServerError(f"{self.kind} on port {self.port} is already running")
        command = self._command()
        with self.log_path.open("ab") as log:
            log.write(f"---- {time.strftime('%H:%M:%S')} start: {' '.join(command)}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                start_new_session=True,  # a Ctrl-C of pytest must not reach the server first
                user=self._user(),
            )
        self._wait_until_answering(command)

    def _wait_until_answering(self, command: list[str]) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            process = self._process
            assert process is not None
            code = process.poll()
            if code is not None:
                self._process = None
                raise ServerError(
                    f"{self.kind} exited with code {code} before answering on "
                    f"{HOST}:{self.port}\ncommand: {' '.join(command)}\n{self.log_tail()}"
                )
            if self._answers():
                return
            if time.monotonic() >= deadline:
                self._terminate(signal.SIGKILL)
                raise ServerError(
                    f"{self.kind} did not answer on {HOST}:{self.port} within "
                    f"{self.start_timeout_s:.0f} s\ncommand: {' '.join(command)}\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM and wait: the server shuts down cleanly (saves its data)."""
        self._terminate(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL and reap: a crash, for fault tests."""
        self._terminate(signal.SIGKILL)

    def restart(self) -> None:
        """Stop if running, then start again on the same port with the same data directory."""
        if self.running:
            self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and remove its directory (when this object created it)."""
        try:
            if self._process is not None:
                self.stop()
        finally:
            for port in self._ports():
                give_back_port(port)
            if self._owns_directory:
                shutil.rmtree(self.directory, ignore_errors=True)

    def _terminate(self, sig: signal.Signals) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(sig)
            if sig != signal.SIGKILL:
                process.send_signal(signal.SIGCONT)  # a test may have frozen it with SIGSTOP
            try:
                process.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                self._process = None
                raise ServerError(
                    f"{self.kind} on port {self.port} ignored {sig.name} for "
                    f"{self.stop_timeout_s:.0f} s and was killed\n{self.log_tail()}"
                ) from None
        self._process = None

    def _ports(self) -> list[int]:
        """Every port this server listens on, given back at `close()`."""
        return [self.port]

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last lines of the server's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log at {self.log_path}: {exc})"
        tail = text.splitlines()[-lines:]
        return f"last {len(tail)} lines of {self.log_path}:\n" + "\n".join(tail)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {HOST}:{self.port} running={self.running}>"


@dataclass(frozen=True)
class TlsListener:
    """A TLS listener of a test broker: its certificate and the CA it checks clients against.

    `require_certificate`: clients must show a certificate signed by `ca_file`;
    `use_identity_as_username`: the certificate's CN is the client's username (no password).
    """

    ca_file: Path
    cert_file: Path
    key_file: Path
    require_certificate: bool = False
    use_identity_as_username: bool = False

    def config_lines(self, port: int) -> list[str]:
        return [
            f"listener {port} {HOST}",
            f"cafile {self.ca_file}",
            f"certfile {self.cert_file}",
            f"keyfile {self.key_file}",
            "tls_version tlsv1.2",  # the minimum; TLS 1.3 is negotiated when both sides can
            f"require_certificate {str(self.require_certificate).lower()}",
            f"use_identity_as_username {str(self.use_identity_as_username).lower()}",
        ]


class MosquittoServer(_Server):
    """A mosquitto broker; `url` is mqtt://127.0.0.1:<port>, `tls_urls` its TLS listeners.

    Args:
        persistence: save the session and queue database in the server's directory, so that
            `restart()` (after `stop()`) brings queued messages back.
        extra_config: further mosquitto.conf lines, e.g. "max_queued_messages 5000".
        tls_listeners: TLS listeners, each on a free port of its own, beside the plain one.
        password_file: a mosquitto_passwd file; then anonymous clients are refused everywhere.
        acl_file: a mosquitto ACL file.
    """

    kind = "mosquitto"

    def __init__(
        self,
        *,
        persistence: bool = False,
        extra_config: Sequence[str] = (),
        directory: Path | None = None,
        tls_listeners: Sequence[TlsListener] = (),
        password_file: Path | None = None,
        acl_file: Path | None = None,
    ) -> None:
        super().__init__(find_binary("mosquitto", "mosquitto"), directory)
        self.persistence = persistence
        self.extra_config = tuple(extra_config)
        self.config_path = self.directory / "mosquitto.conf"
        self.persistence_dir = self.directory / "persistence"
        self.tls_listeners = tuple(tls_listeners)
        self.tls_ports = [free_port() for _ in self.tls_listeners]
        self.password_file = password_file
        self.acl_file = acl_file

    def _ports(self) -> list[int]:
        return [self.port, *self.tls_ports]

    @property
    def tls_urls(self) -> list[str]:
        return [f"mqtts://{HOST}:{port}" for port in self.tls_ports]

    @property
    def host(self) -> str:
        return HOST

    @property
    def url(self) -> str:
        return f"mqtt://{HOST}:{self.port}"

    def config_lines(self) -> list[str]:
        anonymous = self.password_file is None and not any(
            t.use_identity_as_username for t in self.tls_listeners
        )
        lines = [
            f"listener {self.port} {HOST}",
            f"allow_anonymous {str(anonymous).lower()}",
            "log_dest stdout",
        ]
        if self.password_file is not None:
            lines.append(f"password_file {self.password_file}")
        if self.acl_file is not None:
            lines.append(f"acl_file {self.acl_file}")
        for listener, port in zip(self.tls_listeners, self.tls_ports, strict=True):
            lines += listener.config_lines(port)
        if os.geteuid() == 0:
            # As root, mosquitto switches to the user "mosquitto", which cannot write our 0700
            # temporary directory (the persistence file); stay the user who owns it.
            lines.append(f"user {pwd.getpwuid(os.geteuid()).pw_name}")
        if self.persistence:
            self.persistence_dir.mkdir(exist_ok=True)
            lines += ["persistence true", f"persistence_location {self.persistence_dir}/"]
        lines += self.extra_config
        return lines

    def _command(self) -> list[str]:
        self.config_path.write_text("\n".join(self.config_lines()) + "\n")
        return [self.binary, "-c", str(self.config_path)]

    def _answers(self) -> bool:
        code = mqtt_connack(HOST, self.port, timeout_s=1.0)
        # 5 (not authorized) is an answer too, when anonymous clients are refused
        return code == 0 or (code == 5 and self.password_file is not None)


def mqtt_connack(host: str, port: int, timeout_s: float) -> int | None:
    """Send an MQTT 3.1.1 CONNECT (clean session) and return the CONNACK return code.

    None when nothing listens or the answer is not a CONNACK.
    """
    client_id = f"probe-{os.getpid()}-{next(_probe_ids)}".encode()
    variable_header = b"\x00\x04MQTT\x04\x02\x00\x0a"  # level 4, clean session, keep-alive 10 s
    payload = len(client_id).to_bytes(2, "big") + client_id
    body = variable_header + payload
    connect = b"\x10" + bytes([len(body)]) + body
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(connect)
            answer = b""
            while len(answer) < 4:
                chunk = sock.recv(4 - len(answer))
                if not chunk:
                    return None
                answer += chunk
            with contextlib.suppress(OSError):
                sock.sendall(b"\xe0\x00")  # DISCONNECT
    except OSError:
        return None
    if answer[:2] != b"\x20\x02":
        return None
    return answer[3]


@dataclass(frozen=True)
class ExportedSeries:
    """One series as /api/v1/export returns it: labels, values and timestamps in ms."""

    metric: dict[str, str]
    values: list[float]
    timestamps: list[int]

    @property
    def name(self) -> str:
        return self.metric["__name__"]

    @property
    def labels(self) -> dict[str, str]:
        """The labels without __name__."""
        return {k: v for k, v in self.metric.items() if k != "__name__"}

    def samples(self) -> list[tuple[int, float]]:
        return list(zip(self.timestamps, self.values, strict=True))


class VictoriaMetricsServer(_Server):
    """A single-node VictoriaMetrics; `url` is http://127.0.0.1:<port>.

    Flags, each checked on 1.79:
    - `-dedup.minScrapeInterval=1ms`: a point written again with the same series and ms timestamp
      is returned once (export and query) and merged away on disk.
    - `-retentionPeriod=100y`: with the default of one month, older points are dropped with a
      204 and only a log warning; tests use fixed dates.
    - `-search.latencyOffset=0s` and `-search.disableCache`: /api/v1/query sees fresh points at
      once and never answers from a cache filled before a write. They do not affect export.

    Reading fresh data: a written point becomes searchable about 1 s after the 204 (and a new
    series up to 10 s later); `force_flush()` makes it searchable at once. /api/v1/export also
    ends, by default, at the current whole second, hiding points of the current second, so
    `export` passes an explicit `end`.
    """

    kind = "victoria-metrics"

    def __init__(
        self,
        *,
        extra_args: Sequence[str] = (),
        directory: Path | None = None,
        dedup: str | None = "1ms",
    ) -> None:
        """`dedup`: -dedup.minScrapeInterval, or None for VictoriaMetrics' default (off)."""
        super().__init__(find_binary("victoria-metrics", "victoria-metrics"), directory)
        self.extra_args = tuple(extra_args)
        self.dedup = dedup
        self.data_dir = self.directory / "data"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _command(self) -> list[str]:
        return [
            self.binary,
            f"-storageDataPath={self.data_dir}",
            f"-httpListenAddr={HOST}:{self.port}",
            *([f"-dedup.minScrapeInterval={self.dedup}"] if self.dedup is not None else []),
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
            "-search.disableCache",
            "-http.maxGracefulShutdownDuration=2s",
            *self.extra_args,
        ]

    def _answers(self) -> bool:
        try:
            with httpx.Client(timeout=1.0) as client:
                response = client.get(f"{self.url}/health")
        except httpx.HTTPError:
            return False
        return response.status_code in {200, 401}  # 401: started with -httpAuth.*

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0)

    def force_flush(self) -> None:
        """Make every point acknowledged so far searchable (not durable: see `make_durable`)."""
        with self._client() as client:
            client.get("/internal/force_flush").raise_for_status()

    def make_durable(self) -> None:
        """Put every point acknowledged so far on disk, so that it survives `kill()`.

        VictoriaMetrics 1.79 answers 204 while points are still in memory: a SIGKILL within
        about 10 s of a write loses them (`stop()` saves them). Creating a snapshot writes them
        out; the snapshot itself is deleted at once.
        """
        with self._client() as client:
            response = client.post("/snapshot/create")
            response.raise_for_status()
            name = response.json()["snapshot"]
            client.post("/snapshot/delete", params={"snapshot": name}).raise_for_status()

    def export(self, match: str) -> list[ExportedSeries]:
        """Every stored sample of the series matching the selector, e.g. '{device_id="d1"}'."""
        self.force_flush()
        end = int(time.time()) + 3 * 24 * 3600  # VM accepts points up to 2 days ahead
        with self._client() as client:
            response = client.get(
                "/api/v1/export", params={"match[]": match, "start": "0", "end": str(end)}
            )
        if response.status_code != 200:
            raise ServerError(
                f"export of {match!r} answered {response.status_code}: {response.text[:500]}"
            )
        series = []
        for line in response.text.splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            series.append(
                ExportedSeries(
                    metric=dict(row["metric"]),
                    values=[float(v) for v in row["values"]],
                    timestamps=[int(t) for t in row["timestamps"]],
                )
            )
        return sorted(series, key=lambda s: sorted(s.metric.items()))

    def count_samples(self, match: str) -> int:
        """How many samples the series matching the selector hold in all."""
        return sum(len(s.values) for s in self.export(match))


class VmAgentServer(_Server):
    """vmagent (Debian's `victoria-metrics` package) in front of a VictoriaMetrics: it accepts the
    InfluxDB write API (`/api/v2/write`, `/write`), answers 204 once a batch is in its queue
    (memory, then `-remoteWrite.tmpDataPath` on disk) and forwards it by Prometheus remote write,
    flushing every `-remoteWrite.flushInterval` (1 s by default) below 10,000 points a second."""

    kind = "vmagent"

    def __init__(
        self,
        target: VictoriaMetricsServer,
        *,
        extra_args: Sequence[str] = (),
        directory: Path | None = None,
    ) -> None:
        super().__init__(find_binary("vmagent", "victoria-metrics"), directory)
        self.target = target
        self.extra_args = tuple(extra_args)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _command(self) -> list[str]:
        return [
            self.binary,
            f"-httpListenAddr={HOST}:{self.port}",
            f"-remoteWrite.url={self.target.url}/api/v1/write",
            f"-remoteWrite.tmpDataPath={self.directory / 'queue'}",
            "-http.maxGracefulShutdownDuration=2s",
            *self.extra_args,
        ]

    def _answers(self) -> bool:
        try:
            with httpx.Client(timeout=1.0) as client:
                return client.get(f"{self.url}/health").status_code == 200
        except httpx.HTTPError:
            return False


class MosquittoFactory(Protocol):
    """Starts a private broker that the test may stop, kill and restart."""

    def __call__(
        self, *, persistence: bool = False, extra_config: Sequence[str] = ()
    ) -> MosquittoServer: ...


class VictoriaMetricsFactory(Protocol):
    """Starts a private VictoriaMetrics that the test may stop, kill and restart."""

    def __call__(self, *, extra_args: Sequence[str] = ()) -> VictoriaMetricsServer: ...


def find_postgres_binary(name: str) -> str:
    """A PostgreSQL server binary: Debian keeps them in /usr/lib/postgresql/<version>/bin."""
    found = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path is None:
        raise ServerNotInstalled(
            f"{name} is not installed (looked in /usr/lib/postgresql/*/bin and PATH): "
            "install it with `apt-get install postgresql`"
        )
    return on_path


class PostgresServer(_Server):
    """A private PostgreSQL cluster (initdb on first start); never the machine's own on 5432.

    Trust authentication on 127.0.0.1 and a Unix socket in the server's directory. PostgreSQL
    refuses to run as root: as root, the directory is given to the `postgres` user (Debian's
    package creates it) and the server runs as that user. `durable=False` (the default) turns
    fsync off: the tests kill the API, not the database.
    """

    kind = "postgres"
    start_timeout_s = 30.0
    superuser = "postgres"

    def __init__(
        self,
        *,
        durable: bool = False,
        extra_settings: Sequence[str] = (),
        directory: Path | None = None,
    ) -> None:
        super().__init__(find_postgres_binary("postgres"), directory)
        self.initdb = find_postgres_binary("initdb")
        self.durable = durable
        self.extra_settings = tuple(extra_settings)
        self.data_dir = self.directory / "data"
        self._databases = itertools.count(1)

    def _user(self) -> str | None:
        return "postgres" if os.geteuid() == 0 else None

    def _command(self) -> list[str]:
        if not (self.data_dir / "PG_VERSION").exists():
            self._init_cluster()
        settings = [f"listen_addresses={HOST}", "max_connections=300", "shared_buffers=256MB"]
        if not self.durable:
            settings += ["fsync=off", "synchronous_commit=off", "full_page_writes=off"]
        settings += self.extra_settings
        command = [self.binary, "-D", str(self.data_dir), "-p", str(self.port)]
        command += ["-k", str(self.directory)]
        for setting in settings:
            command += ["-c", setting]
        return command

    def _init_cluster(self) -> None:
        user = self._user()
        if user is not None:
            owner = pwd.getpwnam(user)
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
            if self.log_path.exists():
                os.chown(self.log_path, owner.pw_uid, owner.pw_gid)
        result = subprocess.run(
            [
                *(self.initdb, "-D", str(self.data_dir), "-U", self.superuser, "-A", "trust"),
                *("-E", "UTF8", "--no-sync", "--locale=C"),
            ],
            capture_output=True,
            text=True,
            cwd=self.directory,
            user=user,
            check=False,
        )
        if result.returncode != 0:
            raise ServerError(f"initdb failed ({result.returncode}): {result.stderr[-2000:]}")

    def stop(self) -> None:
        """SIGINT, PostgreSQL's fast shutdown (SIGTERM would wait for every client to leave)."""
        self._terminate(signal.SIGINT)

    def _answers(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.dsn("postgres"), connect_timeout=1) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def dsn(self, database: str) -> str:
        """A libpq connection string for psycopg."""
        return f"host={HOST} port={self.port} user={self.superuser} dbname={database}"

    def url(self, database: str) -> str:
        """A --store URL for the database."""
        return f"postgresql://{self.superuser}@{HOST}:{self.port}/{database}"

    def create_database(self, prefix: str = "test") -> str:
        """A new, empty database; returns its name."""
        import psycopg

        name = f"{prefix}_{os.getpid()}_{next(self._databases)}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name
