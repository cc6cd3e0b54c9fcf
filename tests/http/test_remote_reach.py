"""A remote client reaches a ``host="0.0.0.0"`` server by this machine's address (issue 19).

The client runs in a network namespace this test makes (a veth pair, 10.231.x.0/30: another
"machine" on a private link), or, where that cannot be made (not root, no ``ip``), from this
machine's own non-loopback address. Linux only: network namespaces are a Linux feature.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator

import pytest

from conftest import ACCEPT, INIT, demo_server
from mcp_embed import ServerHandle

# Runs in the client's namespace: each request of argv[1] (a JSON list), answers as JSON.
CLIENT = """
import json, sys, httpx
out = []
for method, url, headers, body in json.loads(sys.argv[1]):
    r = httpx.request(method, url, headers=headers, json=body, timeout=10)
    out.append({"status": r.status_code, "headers": dict(r.headers), "body": r.text})
print(json.dumps(out))
"""

Request = tuple[str, str, dict[str, str], object]
Client = Callable[[list[Request]], list[dict[str, object]]]


def _run(prefix: list[str], requests: list[Request]) -> list[dict[str, object]]:
    cmd = [*prefix, sys.executable, "-c", CLIENT, json.dumps(requests)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


@contextlib.contextmanager
def _namespace() -> Iterator[tuple[str, Client]]:
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("a network namespace needs Linux, root and iproute2")
    tag = f"{os.getpid() % 10000}"
    ns, here, there = f"mcpe{tag}", f"mcpe{tag}h", f"mcpe{tag}c"
    octet = 4 * (os.getpid() % 60)
    server_ip, client_ip = f"10.231.{octet}.1", f"10.231.{octet}.2"
    steps = [
        ["ip", "netns", "add", ns],
        ["ip", "link", "add", here, "type", "veth", "peer", "name", there],
        ["ip", "link", "set", there, "netns", ns],
        ["ip", "addr", "add", f"{server_ip}/30", "dev", here],
        ["ip", "link", "set", here, "up"],
        ["ip", "netns", "exec", ns, "ip", "addr", "add", f"{client_ip}/30", "dev", there],
        ["ip", "netns", "exec", ns, "ip", "link", "set", there, "up"],
    ]
    try:
        for step in steps:
            made = subprocess.run(step, capture_output=True, text=True, timeout=30, check=False)
            if made.returncode != 0:
                pytest.skip(f"cannot make a network namespace here: {' '.join(step)}: {made.stderr.strip()}")
        yield server_ip, lambda requests: _run(["ip", "netns", "exec", ns], requests)
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30, check=False)
        subprocess.run(["ip", "link", "del", here], capture_output=True, timeout=30, check=False)


@contextlib.contextmanager
def _own_address() -> Iterator[tuple[str, Client]]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # UDP connect sends nothing: it only picks a route
            address = s.getsockname()[0]
        except OSError:
            address = ""
    if not address or address.startswith("127."):
        pytest.skip("this machine has no non-loopback IPv4 address")
    yield address, lambda requests: _run([], requests)


@pytest.fixture(params=["namespace", "own-address"])
def remote(request: pytest.FixtureRequest) -> Iterator[tuple[str, Client]]:
    """(the server's address as the client sees it, a client running there)."""
    with _namespace() if request.param == "namespace" else _own_address() as found:
        yield found


def _start(**config: object) -> ServerHandle:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "no authentication": expected here
        return demo_server(host="0.0.0.0", **config).start()


def test_the_guides_minimal_remote_server_is_reached_by_the_machines_address(
    remote: tuple[str, Client], caplog: pytest.LogCaptureFixture
) -> None:
    address, client = remote
    with caplog.at_level(logging.INFO, logger="mcp_embed"):
        handle = _start(enable_cors=True)
    with handle as h:
        url = f"http://{address}:{h.port}/mcp"
        preflight = {"Origin": "https://claude.ai", "Access-Control-Request-Method": "POST"}
        plain, pre, browser, named = client(
            [
                ("POST", url, ACCEPT, INIT),
                ("OPTIONS", url, preflight, None),
                ("POST", url, {**ACCEPT, "Origin": "https://claude.ai"}, INIT),
                ("POST", url, {**ACCEPT, "Host": f"rebound.example:{h.port}"}, INIT),
            ]
        )
    assert plain["status"] == 200, plain
    assert "serverInfo" in str(plain["body"])
    # The browser's origin is not in the list: the preflight and the request both say so, alike.
    assert pre["status"] == 403 and browser["status"] == 403, (pre, browser)
    assert pre["body"] == browser["body"]
    assert "cors_origins=(...)" in str(browser["body"]) and "enable_cors=True" in str(browser["body"])
    # A name this machine does not answer to (what DNS rebinding sends) is still refused.
    assert named["status"] == 421 and "allowed_hosts=(...)" in str(named["body"])
    # The start-up log says what is admitted and how to widen it.
    said = [r.getMessage() for r in caplog.records if "the Host/Origin guard admits" in r.getMessage()]
    assert said, caplog.text
    assert "the IP address a request arrives on" in said[0] and "allowed_hosts" in said[0]
    assert "http://localhost:*" in said[0]


def test_a_listed_browser_origin_gets_one_yes_from_cors_and_the_guard(remote: tuple[str, Client]) -> None:
    address, client = remote
    with _start(enable_cors=True, cors_origins=("https://claude.ai",)) as h:
        url = f"http://{address}:{h.port}/mcp"
        preflight = {"Origin": "https://claude.ai", "Access-Control-Request-Method": "POST"}
        browser = {**ACCEPT, "Origin": "https://claude.ai"}
        pre, post = client([("OPTIONS", url, preflight, None), ("POST", url, browser, INIT)])
    assert pre["status"] == 204 and post["status"] == 200, (pre, post)
    pre_headers, post_headers = pre["headers"], post["headers"]
    assert isinstance(pre_headers, dict) and isinstance(post_headers, dict)
    assert pre_headers["access-control-allow-origin"] == "https://claude.ai"
    assert post_headers["access-control-allow-origin"] == "https://claude.ai"
