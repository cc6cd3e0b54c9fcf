"""Import time and in-process start(wait=False) time, each in fresh interpreters."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from .servers import REPO_DIR, child_env

_IMPORT_CODE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
PROBE = Path(__file__).resolve().parent / "probe_start.py"


def import_seconds(module: str, repeats: int) -> dict[str, Any]:
    """Best and median wall time of `import module` in `repeats` fresh interpreters (after one warm-up)."""
    samples: list[float] = []
    for i in range(repeats + 1):
        proc = subprocess.run(
            [sys.executable, "-c", _IMPORT_CODE.format(module=module)],
            capture_output=True,
            text=True,
            env=child_env(),
            cwd=REPO_DIR,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()
            return {"error": tail[-1] if tail else f"exit {proc.returncode}"}
        if i > 0:  # the first run may write .pyc files
            samples.append(float(proc.stdout.strip()))
    return {"best_s": min(samples), "median_s": statistics.median(samples), "samples_s": samples}


def start_probe(repeats: int) -> dict[str, Any]:
    """Run probe_start.py `repeats` times; best (min) of each figure, plus all samples."""
    runs: list[dict[str, Any]] = []
    for _ in range(repeats):
        proc = subprocess.run(
            [sys.executable, str(PROBE)],
            capture_output=True,
            text=True,
            env=child_env(),
            cwd=REPO_DIR,
            timeout=120,
            check=False,
        )
        line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
        if proc.returncode != 0 or not line.startswith("{"):
            tail = "\n".join(proc.stderr.strip().splitlines()[-10:])
            return {"error": f"probe exited {proc.returncode}: {tail}"}
        runs.append(json.loads(line))
    keys = [k for k in runs[0] if all(isinstance(r.get(k), float) for r in runs)]
    best = {k: min(r[k] for r in runs) for k in keys}
    return {"best": best, "runs": runs}
