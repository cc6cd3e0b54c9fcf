"""The printed table, the ratios against the SDK-on-hypercorn baseline, and the PASS/MISS targets."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .servers import BASELINE, SPECS, STATEFUL_BASELINE

NOISY_CORES = 0.25


@dataclass(frozen=True)
class Target:
    label: str
    value: float | None
    limit: float
    higher_is_better: bool
    unit: str

    @property
    def verdict(self) -> str:
        if self.value is None or math.isnan(self.value):
            return "n/a"
        ok = self.value >= self.limit if self.higher_is_better else self.value <= self.limit
        return "PASS" if ok else "MISS"

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.label,
            "value": self.value,
            "limit": self.limit,
            "higher_is_better": self.higher_is_better,
            "unit": self.unit,
            "verdict": self.verdict,
        }


def metric(result: dict[str, Any] | None, key: str) -> float | None:
    """The headline figures of one server result, by short name."""
    if not result or result.get("status") != "ok":
        return None
    summary = result["summary"]
    if key in ("rps", "p50_ms", "p99_ms", "other_load"):
        return float(summary["other_load_cores_max" if key == "other_load" else key])
    if key == "cpu_us":
        return float(summary["cpu_per_call_us"])
    if key == "rss_mb":
        return float(result["rss_bytes"]) / 2**20
    if key == "cold_ms":
        return float(result["cold_start_s"]["median"]) * 1000
    raise KeyError(key)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def ratios(
    results: dict[str, dict[str, Any]], baseline: str = BASELINE
) -> dict[str, dict[str, float | None]]:
    base = results.get(baseline)
    keys = ("rps", "p50_ms", "cpu_us", "rss_mb", "cold_ms")
    return {name: {k: _ratio(metric(r, k), metric(base, k)) for k in keys} for name, r in results.items()}


def targets(
    results: dict[str, dict[str, Any]], imports: dict[str, Any], probe: dict[str, Any]
) -> list[Target]:
    out: list[Target] = []
    for embed, sdk in (("embed-stateless", BASELINE), ("embed-stateful", STATEFUL_BASELINE)):
        e, s = results.get(embed), results.get(sdk)
        tag = f"{embed} vs {sdk}"
        out += [
            Target(f"throughput c=16 ({tag})", _ratio(metric(e, "rps"), metric(s, "rps")), 1.5, True, "x"),
            Target(
                f"server CPU per call ({tag})",
                _ratio(metric(e, "cpu_us"), metric(s, "cpu_us")),
                0.6,
                False,
                "x",
            ),
            Target(f"p50 at c=1 ({tag})", _ratio(metric(e, "p50_ms"), metric(s, "p50_ms")), 0.6, False, "x"),
            Target(f"RSS ({tag})", _ratio(metric(e, "rss_mb"), metric(s, "rss_mb")), 1.0, False, "x"),
        ]
    imp = imports.get("mcp_embed", {}).get("best_s")
    out.append(Target("import mcp_embed (best)", imp * 1000 if imp is not None else None, 30.0, False, "ms"))
    nowait = probe.get("best", {}).get("start_nowait_s")
    out.append(
        Target(
            "start(wait=False) return (best)",
            nowait * 1000 if nowait is not None else None,
            20.0,
            False,
            "ms",
        )
    )
    return out


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render(
    results: dict[str, dict[str, Any]],
    imports: dict[str, Any],
    probe: dict[str, Any],
    target_list: list[Target],
    loader: str,
) -> str:
    lines: list[str] = []
    add = lines.append
    add(f"load generator: {loader}")
    add("req/s, p50/p99 and CPU/call: median over rounds; cold start: median of launches; other load: the")
    add("most CPU (in cores) that processes other than the server and the load generator used during a run")
    header = (
        f"{'server':<44} {'req/s c=16':>10} {'p50/p99 c=1 ms':>15} {'CPU/call µs':>11} {'RSS MB':>7} "
        f"{'cold→list ms':>12} {'other load':>10}  status"
    )
    add(header)
    add("-" * len(header))
    labels = {s.name: s.label for s in SPECS}
    for name, r in results.items():
        p50, p99 = metric(r, "p50_ms"), metric(r, "p99_ms")
        lat = "-" if p50 is None or p99 is None else f"{p50:.2f} / {p99:.2f}"
        status = (
            r.get("status", "?")
            if r.get("status") == "ok"
            else f"{r.get('status')}: {r.get('error', '')[:60]}"
        )
        add(
            f"{labels.get(name, name):<44} {_fmt(metric(r, 'rps'), ',.0f'):>10} {lat:>15} "
            f"{_fmt(metric(r, 'cpu_us'), ',.0f'):>11} {_fmt(metric(r, 'rss_mb'), '.1f'):>7} "
            f"{_fmt(metric(r, 'cold_ms'), ',.0f'):>12} {_fmt(metric(r, 'other_load'), '.2f'):>10}  {status}"
        )
    noisy = [labels.get(n, n) for n, r in results.items() if (metric(r, "other_load") or 0.0) > NOISY_CORES]
    if noisy:
        add(
            f"warning: other processes used > {NOISY_CORES} core during runs of: {', '.join(noisy)};"
            " rerun to confirm"
        )
    add("")
    add(f"ratios vs {BASELINE} (throughput: higher is better; the rest: lower is better)")
    add(f"{'server':<44} {'req/s':>7} {'p50':>7} {'CPU':>7} {'RSS':>7} {'cold':>7}")
    for name, rat in ratios(results).items():
        cells = " ".join(
            f"{_fmt(rat[k], '.2f'):>7}" for k in ("rps", "p50_ms", "cpu_us", "rss_mb", "cold_ms")
        )
        add(f"{labels.get(name, name):<44} {cells}")
    add("")
    add("import time, fresh interpreter (best / median ms)")
    for module, data in imports.items():
        if "error" in data:
            add(f"  import {module:<24} error: {data['error']}")
        else:
            add(f"  import {module:<24} {data['best_s'] * 1000:7.1f} / {data['median_s'] * 1000:7.1f}")
    add("")
    if "best" in probe:
        b = probe["best"]
        add("mcp-embed in process, fresh interpreter (best of runs, ms)")
        for key, label in (
            ("import_s", "from mcp_embed import create_skill_server, McpHttpConfig"),
            ("create_and_register_s", "create_skill_server() + @server.tool()"),
            ("start_nowait_s", "start(wait=False) returned"),
            ("ready_s", "  wait_ready() returned, from start()"),
            ("first_tools_list_s", "  first tools/list answered, from start()"),
        ):
            if key in b:
                add(f"  {label:<58} {b[key] * 1000:7.1f}")
    elif "error" in probe:
        add(f"mcp-embed in-process start: {probe['error']}")
    add("")
    add("targets")
    for t in target_list:
        value = "-" if t.value is None else f"{t.value:.2f}{t.unit}"
        sign = "≥" if t.higher_is_better else "≤"
        add(f"  {t.verdict:<5} {t.label:<66} {value:>10}  (target {sign} {t.limit:g}{t.unit})")
    return "\n".join(lines)
