"""What the gateway's routes reach, as FastAPI dependencies: the agent's desk and the stores that
`create_app` put on `app.state`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from edge.agent import Desk
from edge.sinks import DeliveryLog
from gateway.disk import DiskWatch
from gateway.reading_source import ReadingSource


def _desk(request: Request) -> Desk:
    desk: Desk = request.app.state.desk
    return desk


def _readings(request: Request) -> ReadingSource | None:
    readings: ReadingSource | None = request.app.state.readings
    return readings


def _deliveries(request: Request) -> DeliveryLog | None:
    deliveries: DeliveryLog | None = request.app.state.deliveries
    return deliveries


def _disk(request: Request) -> DiskWatch | None:
    disk: DiskWatch | None = request.app.state.disk
    return disk


def _metrics(request: Request) -> Callable[[], Awaitable[str]]:
    render: Callable[[], Awaitable[str]] = request.app.state.render_metrics
    return render


AgentDesk = Annotated[Desk, Depends(_desk)]
Readings = Annotated[ReadingSource | None, Depends(_readings)]
Deliveries = Annotated[DeliveryLog | None, Depends(_deliveries)]
Disk = Annotated[DiskWatch | None, Depends(_disk)]
MetricsText = Annotated[Callable[[], Awaitable[str]], Depends(_metrics)]
