"""Every check mcp-embed runs: ``nox`` runs them all (the README's test command, and CI's)."""

from __future__ import annotations

import glob
import os
import shutil
import sys
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = [
    "lint",
    "typecheck",
    "tests",
    "lifecycle",
    "clients",
    "blender",
    "conformance",
    "bench",
    "docs",
    "edge",
    "replicas",
]

ROOT = Path(__file__).parent
ARTIFACTS = ROOT / "artifacts"
# Every server a session starts (tests, conformance, benchmarks) writes its audit log and log file
# here, never in the user's own log folder.
os.environ.setdefault("MCP_EMBED_LOG_DIR", str(ROOT / ".nox" / "mcp-embed-logs"))


def _install(session: nox.Session, *extras: str) -> None:
    spec = f".[{','.join(extras)}]" if extras else "."
    session.install("-e", spec)


def _debian_package(session: nox.Session, name: str, path: str) -> bool:
    """Whether program ``name`` is here, installing Debian's package of it when missing and root."""
    if shutil.which(name) is not None or os.path.exists(path):
        return True
    if not (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get")):
        return False
    apt_env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run("apt-get", "update", "-q", external=True, env=apt_env)
    session.run("apt-get", "install", "-y", "-q", name, external=True, env=apt_env)
    return True


def find_python(version: str) -> str | None:
    """An interpreter for ``version``: on PATH, or one that pyenv keeps but has not put on PATH."""
    exe = shutil.which(f"python{version}")
    if exe:
        try:
            import subprocess

            out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
            if out.returncode == 0 and out.stdout.startswith(f"Python {version}"):
                return exe
        except (OSError, subprocess.SubprocessError):
            pass
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", f"python{version}")))
    return found[-1] if found else None


@nox.session(python=False)
def lint(session: nox.Session) -> None:
    """ruff over the package, tests, benchmarks and this file."""
    session.run(sys.executable, "-m", "pip", "install", "-q", "ruff>=0.8", external=True)
    session.run(
        sys.executable, "-m", "ruff", "check", "src", "tests", "benchmarks", "noxfile.py", external=True
    )


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package (with every optional extra, so their imports are checked too),
    also as Windows and macOS see it: CI runs on Linux only, and this checks the branches it cannot run."""
    _install(session, "metrics", "test")  # test: pytest, for the pytest plugin's types
    session.install("mypy>=1.13", "types-PyYAML", "types-jsonschema")
    session.run("mypy", "--strict", "src/mcp_embed")
    for platform in ("win32", "darwin"):
        session.run("mypy", "--strict", "--platform", platform, "src/mcp_embed")


@nox.session
def tests(session: nox.Session) -> None:
    """The unit and end-to-end suite on the default Python (Node clients and hosts have their own)."""
    _install(session, "test")
    # Real Qt applications for the Qt dispatcher test (offscreen: no display needed). Each binding
    # runs in a child process of its own; PySide2 has no wheels for this Python.
    session.install("PySide6-Essentials>=6.5", "PyQt6", "PyQt5")
    # Redis is not installed here: the tests marked `redis` (tests/conftest.py: tests/replicas,
    # and the Redis cases of the registry and the gateway) are the `replicas` session's, which
    # installs redis-server and nginx and requires them, so none passes by skipping.
    session.run(
        "pytest",
        "-m",
        "not node and not redis",
        *session.posargs,
        env={"MCP_EMBED_REQUIRE_QT": "1", "QT_QPA_PLATFORM": "offscreen"},
    )


LIFECYCLE_TESTS = (
    "tests/runtime/test_lifecycle.py",
    "tests/runtime/test_interpreter_exit.py",
    "tests/test_sdk_client.py",
)
# Debian's testing suite, which ships python3.14 (bookworm, this machine's Debian, has only 3.11).
# Bookworm's debootstrap has no script named for it yet: sid's is the same.
DEBIAN_TESTING = "forky"


@nox.session(python=False)
def lifecycle(session: nox.Session) -> None:
    """start/stop, interpreter exit and the SDK client on Python 3.12, 3.13 (hypercorn #308 makes stop
    hang there) and 3.14 (daemon threads at exit changed; hypercorn #351, #354)."""
    for version in ("3.12", "3.13", "3.14"):
        exe = find_python(version)
        if exe is None and version == "3.14":
            _lifecycle_in_debian_testing(session, version)
            continue
        if exe is None:
            session.error(f"Python {version} is needed for the lifecycle session and was not found")
        venv = ROOT / ".nox" / f"lifecycle-{version}"
        py = venv / "bin" / "python"
        if not py.exists():
            session.run(exe, "-m", "venv", str(venv), external=True)
        session.run(str(py), "-m", "pip", "install", "-q", "-e", ".[test]", external=True)
        session.run(str(py), "-m", "pytest", *LIFECYCLE_TESTS, "-q", external=True)


def _debian_mirror() -> str | None:
    """The Debian archive this machine's apt uses (its first ``.../debian`` URI), for debootstrap."""
    files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))]
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if words[:1] == ["URIs:"]:
                uris = words[1:]
            elif words[:1] == ["deb"]:  # deb [options] URI suite...
                uris = [w for w in words[1:] if "://" in w][:1]
            else:
                continue
            for uri in uris:
                if uri.rstrip("/").endswith("/debian"):
                    return uri
    return None


def _lifecycle_in_debian_testing(session: nox.Session, version: str) -> None:
    """The lifecycle tests on Debian testing's own python``version``, in a chroot of that suite.

    For a Python that neither PATH nor pyenv has: pyenv and uv download CPython from hosts that CI
    does not reach, while Debian's archive is reached. debootstrap makes the root once (about 30 s,
    280 MB in .nox); each run copies the checkout into it (a copy, not a bind mount, so that
    deleting .nox can never reach the checkout) and mounts /proc there for the run only.
    """
    if not (sys.platform == "linux" and hasattr(os, "geteuid") and os.geteuid() == 0):
        session.error(f"Python {version} is needed: install it (pyenv install {version}), or run as root")
    if not _debian_package(session, "debootstrap", "/usr/sbin/debootstrap"):
        session.error(f"Python {version} is needed: install it, or `apt-get install debootstrap`")
    root = ROOT / ".nox" / f"debian-{DEBIAN_TESTING}"
    proc = root / "proc"
    if os.path.ismount(proc):  # left by a run that was killed
        session.run("umount", "--lazy", str(proc), external=True)
    if not (root / "usr" / "bin" / f"python{version}").exists():
        shutil.rmtree(root, ignore_errors=True)  # a root left half-made by an interrupted run
        mirror = _debian_mirror()
        if mirror is None:
            session.error("no Debian archive in apt's sources (/etc/apt) to debootstrap from")
        packages = f"python{version},python{version}-venv,ca-certificates"
        script = "/usr/share/debootstrap/scripts/sid"
        session.run(
            "debootstrap", "--variant=minbase", f"--include={packages}",
            DEBIAN_TESTING, str(root), mirror, script,
            external=True,
        )  # fmt: skip
    # pip inside reaches PyPI as this machine does: the same resolver and CA bundles at the same paths.
    shutil.copyfile("/etc/resolv.conf", root / "etc" / "resolv.conf")
    for var in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        bundle = os.environ.get(var, "/etc/ssl/certs/ca-certificates.crt")
        if os.path.isfile(bundle):
            inside = root / bundle.lstrip("/")
            inside.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(bundle, inside)
    src = root / "src"
    shutil.rmtree(src, ignore_errors=True)
    skip = shutil.ignore_patterns(
        ".git", ".nox", ".venv", ".hypothesis", "artifacts", "node_modules", "__pycache__", ".*_cache"
    )
    shutil.copytree(ROOT, src, ignore=skip, symlinks=True)
    venv = f"/opt/lifecycle-{version}"
    steps = (
        f"set -e; cd /src; [ -x {venv}/bin/python ] || python{version} -m venv {venv}; "
        f"{venv}/bin/python -m pip install -q -e '.[test]'; {venv}/bin/python -VV; "
        f"{venv}/bin/python -m pytest {' '.join(LIFECYCLE_TESTS)} -q -p no:cacheprovider"
    )
    session.run("mount", "-t", "proc", "proc", str(proc), external=True)
    try:
        session.run(
            "chroot", str(root), "/bin/sh", "-c", steps,
            env={"MCP_EMBED_LOG_DIR": "/tmp/mcp-embed-logs", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            external=True,
        )  # fmt: skip
    finally:
        session.run("umount", "--lazy", str(proc), external=True)


@nox.session(python=False)
def blender(session: nox.Session) -> None:
    """The Blender dispatcher in real headless Blender: bpy 5.0.x from PyPI, which needs Python 3.11."""
    exe = find_python("3.11")
    if exe is None:
        session.error("Python 3.11 is needed for the blender session (bpy 5.0 wheels) and was not found")
    venv = ROOT / ".nox" / "blender-3.11"
    py = venv / "bin" / "python"
    if not py.exists():
        session.run(exe, "-m", "venv", str(venv), external=True)
    session.run(str(py), "-m", "pip", "install", "-q", "-e", ".[test]", "bpy>=5.0,<5.1", external=True)
    session.run(
        str(py),
        "-m",
        "pytest",
        "tests/test_host_blender.py",
        "-q",
        *session.posargs,
        env={"MCP_EMBED_REQUIRE_BPY": "1"},
        external=True,
    )


@nox.session
def clients(session: nox.Session) -> None:
    """The MCP Inspector CLI and the TypeScript SDK client (npm) against a running server."""
    _install(session, "test")
    session.run("bash", "tests/clients/install.sh", external=True)
    session.run("pytest", "-m", "node", *session.posargs, env={"MCP_EMBED_REQUIRE_NODE": "1"})


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against the SDK's MCPServer and a raw ASGI echo, in one run (quick mode in CI),
    skill discovery against a plain read of the same files, the Redis event store against the
    in-memory one, and tracing's cost when off."""
    _install(session, "test", "redis")  # redis: the Redis event store's benchmark below
    session.install("uvicorn")
    # wrk loads the servers from a process of its own; without it the harness's httpx loop is the
    # bottleneck and the ratios say little (the run says which loader it used).
    if not _debian_package(session, "wrk", "/usr/bin/wrk"):
        session.warn("wrk is not installed (`apt-get install wrk`): the httpx load loop is used")
    ARTIFACTS.mkdir(exist_ok=True)
    args = session.posargs or ["--quick"]
    # The harness checks itself first (parsing, verdicts, one bounded exchange; no timings asserted).
    session.run("pytest", "benchmarks/test_harness.py", "-q", "-o", "pythonpath=benchmarks")
    session.run("python", "benchmarks/run.py", *args, "--json", str(ARTIFACTS / "bench.json"))
    # Skill discovery: 1,000 skills and 5,000 tools against a plain read of the same files.
    session.run("python", "benchmarks/bench_skills.py", *(["--repeat", "3"] if "--quick" in args else []))
    # A host holding the GIL in one long C call: initialize latency, dedicated vs subprocess.
    quick_gil = ["--hold", "1", "--rounds", "1"] if "--quick" in args else []
    session.run("python", "benchmarks/bench_gil.py", *quick_gil)
    # The subprocess mode's IPC hop over dedicated, at p50 (target: at most +1 ms), in one run.
    session.run("python", "benchmarks/bench_spawn.py", *(["--calls", "300"] if "--quick" in args else []))
    # Issue 14: a poisoned load in both spawn modes must give N audit records for N calls.
    session.run("python", "benchmarks/bench_audit.py", "--poisoned-only")
    # Issue 16: a streamed call with its event store in a real redis-server against in memory.
    if _debian_package(session, "redis-server", "/usr/bin/redis-server"):
        quick_redis = ["--calls", "600", "--rounds", "12"] if "--quick" in args else []
        session.run("python", "benchmarks/bench_redis_events.py", *quick_redis)
    else:
        session.warn("redis-server is not installed (`apt-get install redis-server`): no Redis benchmark")
    # Issue 17: the gateway's hop over calling the instance directly, at p50 (target: at most +1 ms).
    session.run("python", "benchmarks/bench_gateway.py", *(["--calls", "300"] if "--quick" in args else []))
    # Issue 18: CPU per call with the tracing hooks and no provider against the hooks taken out.
    session.run("python", "benchmarks/bench_tracing.py", *(["--quick"] if "--quick" in args else []))


@nox.session
def conformance(session: nox.Session) -> None:
    """The official MCP conformance suite, both harness versions, against tests/conformance/everything.py.

    Stateful and stateless; checks.json per run under artifacts/conformance/ (ci.py, REQUIREMENTS.md §9).
    """
    _install(session)
    cache = ROOT / ".nox" / "conformance-cache"
    session.run("bash", "tests/conformance/install.sh", str(cache), external=True)
    session.run(
        "python",
        "tests/conformance/ci.py",
        "--prefix",
        str(cache),
        "--out",
        str(ARTIFACTS / "conformance"),
        *session.posargs,
    )


@nox.session
def edge(session: nox.Session) -> None:
    """Auth: a real nginx (installed with apt-get when missing and running as root) in front of the
    server with the rendered config, native JWT/API-key checks against a loopback JWKS, mcp-remote's
    OAuth discovery, and the example Dockerfile's command."""
    if not _debian_package(session, "nginx", "/usr/sbin/nginx"):
        session.error("nginx is needed: `sudo apt-get install -y nginx` (or nginx-light), then rerun")
    _install(session, "test")
    session.run(
        "pytest",
        "tests/test_edge_nginx.py",
        "tests/http/auth/test_auth_native.py",
        "tests/test_auth_config.py",
        "tests/test_mcp_remote_discovery.py",
        "tests/test_example_remote_server.py",
        "-m",
        "",
        *session.posargs,
        env={"MCP_EMBED_REQUIRE_NGINX": "1", "MCP_EMBED_REQUIRE_NODE": "1"},
    )


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site: mkdocs build --strict (a broken link, page or API reference fails)."""
    _install(session, "docs")
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "--site-dir",
        str(ARTIFACTS / "site"),
        env={"NO_MKDOCS_2_WARNING": "1"},
    )


@nox.session
def replicas(session: nox.Session) -> None:
    """Everything on a real redis-server: the Redis stores and the cross-replica tests, three real
    ``mcp-embed serve`` processes behind a real round-robin nginx (tests/replicas), and the Redis
    cases of the instance registry and the gateway (marked ``redis``). Both programs are
    installed with apt-get when missing (and root); the tests fail, not skip, without them.
    Kept short for CI's budget: one pytest run, no benchmark."""
    for name, path in (("redis-server", "/usr/bin/redis-server"), ("nginx", "/usr/sbin/nginx")):
        if not _debian_package(session, name, path):
            session.error(f"{name} is needed: `sudo apt-get install -y {name}`, then rerun")
    _install(session, "redis", "test")
    session.run(
        "pytest",
        "tests/replicas",
        "tests/instances",
        "tests/gateway",
        "-m",
        "redis and not node",
        "-q",
        *session.posargs,
        env={"MCP_EMBED_REQUIRE_REDIS": "1", "MCP_EMBED_REQUIRE_NGINX": "1"},
    )
