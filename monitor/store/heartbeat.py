"""The daemon's heartbeat row, read by `monitor healthcheck` (Docker HEALTHCHECK)."""

from __future__ import annotations

import os
import socket
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor import __version__
from monitor.store.tables import heartbeat

NAME = "daemon"


async def beat(
    connection: AsyncConnection, *, started_at: datetime, now: datetime, summary: str
) -> None:
    values = {
        "pid": os.getpid(),
        "host": socket.gethostname()[:200],
        "version": __version__,
        "started_at": started_at,
        "beat_at": now,
        "summary": summary,
    }
    result = await connection.execute(
        update(heartbeat).where(heartbeat.c.name == NAME).values(**values)
    )
    if not result.rowcount:
        await connection.execute(insert(heartbeat).values(name=NAME, **values))


async def read(connection: AsyncConnection) -> dict[str, Any] | None:
    row = (await connection.execute(select(heartbeat).where(heartbeat.c.name == NAME))).first()
    return dict(row._mapping) if row else None
