"""The gateway's alert API: `create_app` over an agent; a router per resource group beside it."""

from gateway.api.app import create_app

__all__ = ["create_app"]
