"""The duty console: server-rendered pages at /console/ where the people on duty see, hear and
handle every alarm (gateway/console/app.py assembles it; the alert API's app mounts it).
"""

from gateway.console.app import SESSION_TTL_S, create_console

__all__ = ["SESSION_TTL_S", "create_console"]
