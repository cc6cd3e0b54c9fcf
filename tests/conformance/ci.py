"""Run the official MCP conformance suite against the everything fixture, in every mode.

    python tests/conformance/ci.py --prefix .nox/conformance-cache --out artifacts/conformance

For each server mode (``stateful``, ``stateless``) it starts ``everything.py`` on an
OS-chosen loopback port, runs ``run.py`` with each harness version (``stable`` 0.1.16,
``alpha`` 0.2.0-alpha.12, both ``--suite all``) into ``OUT/<version>-<mode>/``, stops the
server and prints one summary table. Exit status 1 if any run failed.

The alpha harness runs each scenario at the protocol revision it was written for; two more
alpha legs force every scenario onto one wire (``--spec-version 2025-11-25`` and
``2026-07-28``, into ``OUT/alpha@<rev>-<mode>/``), which catches a feature that works on one
wire only.

No scenario is an expected failure (``--allow-fail``, XFAIL in the tables): REQUIREMENTS.md §9.
The SEP-2663 tasks scenarios, XFAIL while SDK 2.3 had no server side for the extension, pass
since mcp-embed serves it itself (``src/mcp_embed/protocol/tasks.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# (harness version, forced --spec-version or None)
LEGS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "stable": (("stable", None),),
    "alpha": (("alpha", None), ("alpha", "2025-11-25"), ("alpha", "2026-07-28")),
}


def allowed(version: str, spec: str | None, mode: str) -> tuple[str, ...]:
    """Scenarios passed with ``--allow-fail`` (XFAIL) for one leg: none. Add one only with
    evidence in REQUIREMENTS.md §9 that the suite, not mcp-embed, is at fault."""
    return ()


class Fixture:
    """``everything.py`` in a child process; ``url`` once it printed its ready line."""

    def __init__(self, mode: str, log: Path) -> None:
        cmd = [sys.executable, str(HERE / "everything.py"), "--port", "0"]
        if mode == "stateless":
            cmd.append("--stateless")
        self.log = log.open("w", encoding="utf-8")
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.proc.stdout is not None
        self.url: str | None = None
        ready = threading.Event()

        def pump() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.log.write(line)
                self.log.flush()
                if line.startswith("ready: ") and self.url is None:
                    self.url = line.split()[1]
                    ready.set()
            ready.set()

        self.thread = threading.Thread(target=pump, daemon=True)
        self.thread.start()
        ready.wait(60)
        if self.url is None:
            self.stop()
            raise RuntimeError(f"the {mode} fixture did not start; see {log}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        self.thread.join(5)
        self.log.close()


def summarize(out: Path) -> dict[str, Any]:
    doc = json.loads((out / "checks.json").read_text(encoding="utf-8"))
    verdicts: dict[str, int] = {"PASS": 0, "FAIL": 0, "XFAIL": 0, "SKIP": 0}
    wire_ok = wire_all = 0
    for sc in doc["scenarios"].values():
        verdicts[sc["verdict"]] = verdicts.get(sc["verdict"], 0) + 1
        for c in sc.get("checks") or []:
            if c.get("id") == "wire-schema-valid":
                wire_all += 1
                wire_ok += c.get("status") == "SUCCESS"
    return {**verdicts, "scenarios": len(doc["scenarios"]), "wire_ok": wire_ok, "wire_all": wire_all}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prefix", type=Path, required=True, help="install.sh PREFIX")
    p.add_argument("--out", type=Path, required=True, help="artifacts directory")
    p.add_argument("--version", action="append", choices=("stable", "alpha"), help="default: both")
    p.add_argument("--mode", action="append", choices=("stateful", "stateless"), help="default: both")
    p.add_argument("--timeout", type=float, default=600.0, help="budget of one harness run, seconds")
    args = p.parse_args(argv)
    versions = args.version or ["stable", "alpha"]
    modes = args.mode or ["stateful", "stateless"]
    args.out.mkdir(parents=True, exist_ok=True)

    rows: list[tuple[str, str, int, dict[str, Any] | None]] = []
    for mode in modes:
        fixture = Fixture(mode, args.out / f"fixture-{mode}.log")
        try:
            for version, spec in [leg for v in versions for leg in LEGS[v]]:
                name = f"{version}@{spec}" if spec else version
                out = args.out / f"{name}-{mode}"
                cmd = [
                    sys.executable,
                    str(HERE / "run.py"),
                    "--url",
                    str(fixture.url),
                    "--version",
                    version,
                    "--suite",
                    "all",
                    "--out",
                    str(out),
                    "--prefix",
                    str(args.prefix),
                    "--timeout",
                    str(args.timeout),
                    "--quiet",
                ]
                if spec:
                    cmd += ["--spec-version", spec]
                for scenario in allowed(version, spec, mode):
                    cmd += ["--allow-fail", scenario]
                print(f"\n### {name} harness, {mode} server at {fixture.url}", flush=True)
                rc = subprocess.run(cmd, check=False).returncode
                summary = summarize(out) if (out / "checks.json").is_file() else None
                rows.append((name, mode, rc, summary))
        finally:
            fixture.stop()

    print("\nMCP conformance summary (verdicts per scenario; wire = wire-schema-valid checks passed)")
    print(f"{'harness':17} {'mode':10} {'PASS':>5} {'FAIL':>5} {'XFAIL':>6} {'SKIP':>5} {'wire':>9}  result")
    failed = False
    for version, mode, rc, s in rows:
        if s is None:
            print(f"{version:17} {mode:10} {'no checks.json':>33}  FAILED (exit {rc})")
            failed = True
            continue
        wire = f"{s['wire_ok']}/{s['wire_all']}" if s["wire_all"] else "n/a"
        ok = rc == 0 and s["FAIL"] == 0 and s["wire_ok"] == s["wire_all"]
        failed |= not ok
        result = "ok" if ok else f"FAILED (exit {rc})"
        counts = f"{s['PASS']:>5} {s['FAIL']:>5} {s['XFAIL']:>6} {s['SKIP']:>5}"
        print(f"{version:17} {mode:10} {counts} {wire:>9}  {result}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
