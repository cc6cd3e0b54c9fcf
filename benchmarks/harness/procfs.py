"""Server CPU time and memory from /proc (Linux only), summed over the server's process tree."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class _Stat:
    ppid: int
    cpu_ticks: int  # utime + stime + cutime + cstime


def _read_stat(pid: int) -> _Stat | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime..cstime are fields 14..17.
    return _Stat(ppid=int(fields[1]), cpu_ticks=sum(int(f) for f in fields[11:15]))


def process_tree(root: int) -> list[int]:
    """`root` and all its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _read_stat(int(entry))
            if stat is not None:
                children.setdefault(stat.ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cpu_seconds(root: int) -> float:
    """User + system CPU of the tree (reaped children included), in seconds."""
    ticks = 0
    for pid in process_tree(root):
        stat = _read_stat(pid)
        if stat is not None:
            ticks += stat.cpu_ticks
    return ticks / _CLK_TCK


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_bytes(root: int) -> int:
    """Resident set size of the tree now."""
    return sum(_status_kib(pid, "VmRSS") for pid in process_tree(root)) * 1024


def peak_rss_bytes(root: int) -> int:
    """High-water mark of resident memory (VmHWM), summed over the tree."""
    return sum(_status_kib(pid, "VmHWM") for pid in process_tree(root)) * 1024


def available() -> bool:
    return Path("/proc/self/stat").exists()


def system_busy_seconds() -> float:
    """Busy CPU time of the whole machine (all cores) since boot, from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _CLK_TCK
