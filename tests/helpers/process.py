"""Run the real `monitor` command as a child process, for lifecycle and crash tests."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


class MonitorProcess:
    """`python -m monitor ...` with stdout/stderr going to files we can read at any time."""

    def __init__(
        self, tmp: Path, *args: str, name: str = "monitor", env: dict[str, str] | None = None
    ) -> None:
        self.args = args
        self.env = env or {}
        self.stdout_path = tmp / f"{name}.stdout"
        self.stderr_path = tmp / f"{name}.stderr"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> MonitorProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "monitor",
                *self.args,
                stdout=out,
                stderr=err,
                cwd=ROOT,
                env=env,
            )
        return self

    @property
    def stdout(self) -> str:
        return (
            self.stdout_path.read_text(encoding="utf-8", errors="replace")
            if self.stdout_path.exists()
            else ""
        )

    @property
    def stderr(self) -> str:
        return (
            self.stderr_path.read_text(encoding="utf-8", errors="replace")
            if self.stderr_path.exists()
            else ""
        )

    async def wait_for_log(self, needle: str, timeout: float = 20.0, *, count: int = 1) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while self.stderr.count(needle) < count:
            assert self.process is not None
            if self.process.returncode is not None:
                raise AssertionError(
                    f"monitor exited ({self.process.returncode}) before logging {needle!r}:\n{self.stderr}"
                )
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {needle!r} in the log:\n{self.stderr}")
            await asyncio.sleep(0.05)

    def send(self, signum: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    async def wait(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), timeout)

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


async def run_monitor(
    tmp: Path, *args: str, timeout: float = 60.0, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    process = await MonitorProcess(
        tmp, *args, name=f"run-{len(list(tmp.glob('run-*.stdout')))}", env=env
    ).start()
    try:
        code = await process.wait(timeout)
    finally:
        await process.kill()
    return code, process.stdout, process.stderr
