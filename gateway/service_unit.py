"""The systemd unit and the first settings file of a gateway, written from one template each.

`community-edge install-service` writes both for the installation it runs from; deploy/ holds
them as rendered for the default paths (a test keeps the two the same), for those who copy files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SERVICE = "community-edge"
"""The unit's name, its user and group, and the last part of its data and config directories."""

WATCHDOG_S = 30  # a loop that has not pinged for this long is killed (SIGABRT) and restarted


@dataclass(frozen=True)
class ServiceLayout:
    """Where the service runs from and keeps things; the defaults are Debian's conventions."""

    executable: Path = Path("/opt/community-edge/bin/community-edge")
    user: str = SERVICE
    data_dir: Path = Path("/var/lib") / SERVICE
    config_dir: Path = Path("/etc") / SERVICE

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.yaml"


def render_unit(layout: ServiceLayout) -> str:
    """The unit file's text for `layout`."""
    state = _managed(layout.data_dir, Path("/var/lib"))
    config = _managed(layout.config_dir, Path("/etc"))
    managed = ""
    if state is not None:
        # systemd creates it at each start, owned by the user, mode 0700 (personal data)
        managed += f"StateDirectory={state}\nStateDirectoryMode=0700\n"
    if config is not None:
        managed += f"ConfigurationDirectory={config}\nConfigurationDirectoryMode=0750\n"
    return f"""\
# community-edge as a supervised service (Debian). Written by `community-edge install-service`;
# see README.md, "Running it as a service". Check with: systemd-analyze verify {SERVICE}.service
[Unit]
Description=community-edge: smart community devices in, alerts out, nothing lost
After=network-online.target mosquitto.service
Wants=network-online.target
# never give up restarting: a gateway runs unattended for years
StartLimitIntervalSec=0

[Service]
# READY=1 once the outbox is open and every broker session is connected (waits for the broker)
Type=notify
NotifyAccess=main
ExecStart={layout.executable} run --config {layout.config_file}
User={layout.user}
Group={layout.user}
{managed}# where the data lives when the settings file names no data_dir
Environment=COMMUNITY_EDGE_DATA_DIR={layout.data_dir}
# WATCHDOG=1 comes from the agent's event loop every {WATCHDOG_S // 2} s; a hung loop is restarted
WatchdogSec={WATCHDOG_S}
# while the broker is unreachable the agent extends this itself (EXTEND_TIMEOUT_USEC)
TimeoutStartSec=90
# the outbox is flushed to the sinks for a few seconds before exit; what is left stays on disk
TimeoutStopSec=60
Restart=on-failure
# back-off: 2 s, doubling to 2 minutes (systemd 254+; older systemd ignores the two lines
# after this one, with a warning, and waits 2 s every time)
RestartSec=2
RestartSteps=6
RestartMaxDelaySec=120

# hardening: the data directory is the only place it may write
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths={layout.data_dir}
PrivateTmp=yes
ProtectHome=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
CapabilityBoundingSet=
UMask=0077

[Install]
WantedBy=multi-user.target
"""


def render_config(layout: ServiceLayout, mqtt_url: str) -> str:
    """A first settings file: the broker and the data dir; everything else has its default."""
    return f"""\
# community-edge settings on this gateway (README.md, "Configuration", lists every key).
# Read by `community-edge run --config {layout.config_file}`.
# Owner root, group {layout.user}, mode 0640: tokens and passwords here stay out of reach.
data_dir: {layout.data_dir}
mqtt:
  url: {mqtt_url}
api:
  host: 127.0.0.1
  port: 8080
# readings to InfluxDB or VictoriaMetrics instead of the embedded store:
# tsdb: {{url: http://127.0.0.1:8428, org: community, bucket: readings}}
# the device registry (YAML or CSV); without it devices enroll from their topics:
# devices_file: {layout.config_dir}/devices.csv
# whom an unacknowledged alert reaches: people of the duty roster (deploy/roster.example.yaml)
# escalation:
#   roster_file: {layout.config_dir}/roster.yaml
#   policies:
#     - severity: critical
#       steps:
#         - {{after_s: 0, on_duty: here}}            # the person on duty for the alert's building
#         - {{after_s: 120, next_on_roster: here}}   # nobody answered: the next of the rotation
#         - {{after_s: 300, tier: property_manager}}
#       repeat_every_s: 300
# messages carry signed action links when the gateway has an address phones can open:
# notifications: {{public_url: "https://gw.example.org", per_person_limit: 5}}
"""


def _managed(directory: Path, base: Path) -> str | None:
    """`directory` relative to `base` when systemd can manage it there (StateDirectory= ...)."""
    try:
        relative = directory.relative_to(base)
    except ValueError:
        return None
    return str(relative) if relative.parts and ".." not in relative.parts else None
