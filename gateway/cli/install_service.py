"""`community-edge install-service`: write the systemd unit and a first settings file.

The unit runs the `community-edge` of the installation this command runs from (the venv the wheel
went into). An existing settings file is never overwritten: it is the installer's. Creating the
user and starting the unit are left to the printed commands, so nothing changes behind anyone's back.
"""

from __future__ import annotations

import argparse
import grp
import os
import sys
from pathlib import Path

from gateway.cli.process import Commands
from gateway.service_unit import SERVICE, ServiceLayout, render_config, render_unit
from gateway.settings import MqttSettings

_DEFAULTS = ServiceLayout()
_UNIT_DIR = Path("/etc/systemd/system")


def register(commands: Commands) -> None:
    """Add `install-service` and its flags."""
    install = commands.add_parser(
        "install-service", help="write the systemd unit and /etc/community-edge/config.yaml"
    )
    install.add_argument(
        "--executable",
        type=Path,
        help="the community-edge to run (default: the one of this installation)",
    )
    install.add_argument("--user", default=_DEFAULTS.user, help="the service's own user")
    install.add_argument("--data-dir", type=Path, default=_DEFAULTS.data_dir)
    install.add_argument("--config-dir", type=Path, default=_DEFAULTS.config_dir)
    install.add_argument("--unit-dir", type=Path, default=_UNIT_DIR)
    install.add_argument(
        "--mqtt-url",
        default=MqttSettings.model_fields["url"].default,
        help="the broker, written into a new settings file",
    )
    install.add_argument(
        "--root",
        type=Path,
        default=Path("/"),
        help="write under this directory instead of / (an image being built, a test)",
    )
    install.set_defaults(handler=install_service)


def install_service(args: argparse.Namespace) -> int:
    """Write the unit (replacing an older one) and a settings file (only when there is none)."""
    executable: Path = args.executable or Path(sys.prefix) / "bin" / "community-edge"
    if not executable.is_file():
        print(
            f"community-edge: {executable} does not exist; name the installed command with "
            "--executable",
            file=sys.stderr,
        )
        return 2
    layout = ServiceLayout(
        executable=executable.absolute(),
        user=args.user,
        data_dir=args.data_dir,
        config_dir=args.config_dir,
    )
    root: Path = args.root
    unit = _under(root, args.unit_dir / f"{SERVICE}.service")
    unit.parent.mkdir(parents=True, exist_ok=True)
    unit.write_text(render_unit(layout), encoding="utf-8")
    unit.chmod(0o644)
    print(f"wrote {unit}")
    config = _under(root, layout.config_file)
    if config.exists():
        print(f"kept {config} (it exists; the settings are yours)")
    else:
        config.parent.mkdir(parents=True, exist_ok=True)
        # created 0640 in one step: it will hold tokens and passwords
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(render_config(layout, args.mqtt_url))
        _give_group(config, layout.user)
        print(f"wrote {config}")
    print("then, as root:")
    print(
        f"  id {layout.user} || useradd --system --user-group --home-dir {layout.data_dir} "
        f"--shell /usr/sbin/nologin {layout.user}"
    )
    print(f"  chgrp {layout.user} {layout.config_file}")
    print(f"  systemctl daemon-reload && systemctl enable --now {SERVICE}")
    print(f"  systemctl status {SERVICE}; journalctl -u {SERVICE} -f")
    return 0


def _under(root: Path, path: Path) -> Path:
    return root / path.relative_to(path.anchor) if path.is_absolute() else root / path


def _give_group(path: Path, group: str) -> None:
    """Let the service's group read the settings, when that group exists and we may."""
    try:
        gid = grp.getgrnam(group).gr_gid
        os.chown(path, -1, gid)
    except (KeyError, PermissionError):
        pass  # the printed chgrp does it once the user exists
