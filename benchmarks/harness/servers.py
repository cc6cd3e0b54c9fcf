"""Which servers are benchmarked, and launching each in its own subprocess."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from . import mcp_client

BENCH_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = BENCH_DIR.parent
SERVERS_DIR = BENCH_DIR / "servers"


@dataclass(frozen=True)
class ServerSpec:
    name: str
    label: str
    script: str
    args: tuple[str, ...]
    stateful: bool
    kind: str  # "embed" | "sdk" | "raw"

    def argv(self) -> list[str]:
        return [sys.executable, str(SERVERS_DIR / self.script), *self.args]


SPECS: tuple[ServerSpec, ...] = (
    ServerSpec(
        "embed-stateless", "mcp-embed, stateless + JSON", "embed_server.py", ("stateless",), False, "embed"
    ),
    ServerSpec(
        "embed-stateful", "mcp-embed, stateful default", "embed_server.py", ("stateful",), True, "embed"
    ),
    ServerSpec(
        "sdk-hypercorn-stateless",
        "SDK MCPServer, stateless + JSON, hypercorn",
        "sdk_server.py",
        ("hypercorn", "stateless"),
        False,
        "sdk",
    ),
    ServerSpec(
        "sdk-uvicorn-stateless",
        "SDK MCPServer, stateless + JSON, uvicorn",
        "sdk_server.py",
        ("uvicorn", "stateless"),
        False,
        "sdk",
    ),
    ServerSpec(
        "sdk-hypercorn-stateful",
        "SDK MCPServer, stateful default, hypercorn",
        "sdk_server.py",
        ("hypercorn", "stateful"),
        True,
        "sdk",
    ),
    ServerSpec("raw-hypercorn", "raw ASGI JSON echo, hypercorn", "raw_asgi.py", (), False, "raw"),
)
BASELINE = "sdk-hypercorn-stateless"
STATEFUL_BASELINE = "sdk-hypercorn-stateful"


class ServerFailure(RuntimeError):
    """The server did not start, died, or did not answer correctly."""


def child_env() -> dict[str, str]:
    """The environment for every child: the working tree's src/ first, so we measure this checkout."""
    env = dict(os.environ)
    src = str(REPO_DIR / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def embed_importable() -> str | None:
    """None when `from mcp_embed import create_skill_server, McpHttpConfig` works, else the error."""
    code = "from mcp_embed import create_skill_server, McpHttpConfig"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode == 0:
        return None
    lines = proc.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit {proc.returncode}"


class RunningServer:
    """One server subprocess: launched, announced its URL, answered tools/list."""

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in stop()
        self._lines: queue.Queue[str] = queue.Queue()
        self.t_launch = time.perf_counter()
        self.proc = subprocess.Popen(
            spec.argv(), stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=child_env(), cwd=REPO_DIR
        )
        threading.Thread(target=self._drain, daemon=True).start()
        self.url = ""
        self.session: str | None = None
        self.cold_start_s = float("nan")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)

    def stderr_tail(self, n: int = 15) -> str:
        self._stderr.seek(0)
        return "".join(self._stderr.readlines()[-n:])

    def _fail(self, why: str) -> ServerFailure:
        return ServerFailure(f"{self.spec.name}: {why}\n--- server stderr (tail) ---\n{self.stderr_tail()}")

    def wait_ready(self, client: httpx.Client, timeout: float = 30.0) -> float:
        """Wait for the URL line, then for the first good tools/list; return seconds since launch."""
        deadline = self.t_launch + timeout
        while not self.url:
            if self.proc.poll() is not None:
                raise self._fail(f"exited with {self.proc.returncode} before announcing its URL")
            try:
                line = self._lines.get(timeout=min(0.05, max(0.0, deadline - time.perf_counter())))
            except queue.Empty:
                if time.perf_counter() > deadline:
                    raise self._fail(f"no URL within {timeout:.0f}s") from None
                continue
            if line.startswith("URL "):
                self.url = line.split()[1]
        last: Exception | None = None
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise self._fail(f"exited with {self.proc.returncode}")
            try:
                session = mcp_client.open_session(client, self.url) if self.spec.stateful else None
                mcp_client.list_tools(client, self.url, session)
            except httpx.TransportError as exc:
                last = exc
                time.sleep(0.002)
                continue
            except mcp_client.ProtocolError as exc:
                raise self._fail(str(exc)) from exc
            self.session = session
            self.cold_start_s = time.perf_counter() - self.t_launch
            return self.cold_start_s
        raise self._fail(f"no successful tools/list within {timeout:.0f}s (last error: {last!r})")

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise self._fail(f"exited with {self.proc.returncode}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._stderr.close()


def launch(spec: ServerSpec, client: httpx.Client, timeout: float = 30.0) -> RunningServer:
    server = RunningServer(spec)
    try:
        server.wait_ready(client, timeout)
    except BaseException:
        server.stop()
        raise
    return server
