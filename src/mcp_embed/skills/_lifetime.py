"""A skill process and everything it starts end together, and never outlive the process that ran them.

* **POSIX.** The skill starts in a session (so a process group) of its own, under ``_runner.py
  --watch FD``: the runner forks, the child runs the tool (or ``exec``\\ s the script), and the
  parent supervises. ``FD`` is the read end of a pipe whose only write end this process holds; when
  this process dies, however (``kill -9`` included), the kernel closes it, the supervisor reads EOF
  and kills the whole group. A cancel, a timeout or a stop kills the group from here.
* **Windows.** The skill is assigned to a Job object whose only handle this process holds, with
  ``JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE``: closed by this process's death, it kills every process in
  the job. A cancel, a timeout or a stop terminates the job.

A call that returns normally leaves alone what the script started in the background (it is no longer
the call's), as before: only the watch ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from ..logs import get_logger

__all__ = ["ProcessTree", "start_tree"]

log = get_logger("skills")


class ProcessTree:
    """A started skill process, its descendants, and what ties them to this process."""

    def __init__(self, proc: subprocess.Popen[bytes], watch_fd: int | None, job: Any) -> None:
        self.proc = proc
        self._watch_fd = watch_fd
        self._job = job

    def kill(self) -> None:
        """Kill the process and everything it started (its group on POSIX, its job on Windows)."""
        if sys.platform == "win32":
            if self._job is not None:
                self._job.terminate()
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(
                    ["taskkill", "/F", "/T", "/PID", str(self.proc.pid)],
                    capture_output=True,
                    timeout=10,
                    check=False,
                )
        else:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.proc.kill()

    def release(self, *, killed: bool) -> None:
        """The call is over: drop the tie to this process. ``killed`` false leaves the survivors alone."""
        if self._watch_fd is not None:
            # The supervisor is the process itself, so it has exited: nobody reads this any more.
            with contextlib.suppress(OSError):
                os.close(self._watch_fd)
            self._watch_fd = None
        if self._job is not None:
            self._job.close(kill=killed)
            self._job = None


def start_tree(command: Callable[[list[str]], list[str]], **popen: Any) -> ProcessTree:
    """Start ``command(watch_args)`` as a process tree tied to this process (see the module docstring).

    ``command`` gets the runner arguments that arm the watch (``["--watch", FD]``, empty on Windows)
    and returns the full command line. Raises ``OSError`` when it cannot start.
    """
    if sys.platform == "win32":
        popen["creationflags"] = popen.get("creationflags", 0) | subprocess.CREATE_NEW_PROCESS_GROUP
        proc = subprocess.Popen(command([]), **popen)
        job = None
        try:
            job = _Job(proc.pid)
        except OSError as exc:  # e.g. a host job that forbids nesting (before Windows 8)
            log.warning(
                "skill process %d is not in a job object, so it may outlive this process: %s", proc.pid, exc
            )
        return ProcessTree(proc, None, job)
    read_fd, write_fd = os.pipe()  # both non-inheritable; pass_fds hands the child the read end only
    try:
        proc = subprocess.Popen(
            command(["--watch", str(read_fd)]), start_new_session=True, pass_fds=(read_fd,), **popen
        )
    except BaseException:
        os.close(write_fd)
        raise
    finally:
        os.close(read_fd)
    return ProcessTree(proc, write_fd, None)


if sys.platform == "win32":
    import ctypes
    from ctypes import wintypes

    _JOB_OBJECT_EXTENDED_LIMIT_INFORMATION = 9
    _JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x2000
    _PROCESS_SET_QUOTA = 0x0100
    _PROCESS_TERMINATE = 0x0001

    class _BasicLimits(ctypes.Structure):
        _fields_ = [
            ("PerProcessUserTimeLimit", ctypes.c_int64),
            ("PerJobUserTimeLimit", ctypes.c_int64),
            ("LimitFlags", wintypes.DWORD),
            ("MinimumWorkingSetSize", ctypes.c_size_t),
            ("MaximumWorkingSetSize", ctypes.c_size_t),
            ("ActiveProcessLimit", wintypes.DWORD),
            ("Affinity", ctypes.c_size_t),
            ("PriorityClass", wintypes.DWORD),
            ("SchedulingClass", wintypes.DWORD),
        ]

    class _IoCounters(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_uint64)
            for name in ("Read", "Write", "Other", "ReadBytes", "WriteBytes", "OtherBytes")
        ]

    class _ExtendedLimits(ctypes.Structure):
        _fields_ = [
            ("BasicLimitInformation", _BasicLimits),
            ("IoInfo", _IoCounters),
            ("ProcessMemoryLimit", ctypes.c_size_t),
            ("JobMemoryLimit", ctypes.c_size_t),
            ("PeakProcessMemoryUsed", ctypes.c_size_t),
            ("PeakJobMemoryUsed", ctypes.c_size_t),
        ]

    def _kernel32() -> Any:
        k32 = ctypes.WinDLL("kernel32", use_last_error=True)
        k32.CreateJobObjectW.restype = wintypes.HANDLE
        k32.CreateJobObjectW.argtypes = [ctypes.c_void_p, wintypes.LPCWSTR]
        k32.SetInformationJobObject.restype = wintypes.BOOL
        k32.SetInformationJobObject.argtypes = [
            wintypes.HANDLE,
            ctypes.c_int,
            ctypes.c_void_p,
            wintypes.DWORD,
        ]
        k32.OpenProcess.restype = wintypes.HANDLE
        k32.OpenProcess.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
        k32.AssignProcessToJobObject.restype = wintypes.BOOL
        k32.AssignProcessToJobObject.argtypes = [wintypes.HANDLE, wintypes.HANDLE]
        k32.TerminateJobObject.restype = wintypes.BOOL
        k32.TerminateJobObject.argtypes = [wintypes.HANDLE, wintypes.UINT]
        k32.CloseHandle.restype = wintypes.BOOL
        k32.CloseHandle.argtypes = [wintypes.HANDLE]
        return k32

    class _Job:
        """A Job object holding one skill process (and what it starts), killed when closed."""

        def __init__(self, pid: int) -> None:
            self._k32 = _kernel32()
            handle = self._k32.CreateJobObjectW(None, None)  # no security attributes: not inherited
            if not handle:
                raise ctypes.WinError(ctypes.get_last_error())
            self._handle: Any = handle
            try:
                self._set_flags(_JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE)
                process = self._k32.OpenProcess(_PROCESS_SET_QUOTA | _PROCESS_TERMINATE, False, pid)
                if not process:
                    raise ctypes.WinError(ctypes.get_last_error())
                try:
                    if not self._k32.AssignProcessToJobObject(self._handle, process):
                        raise ctypes.WinError(ctypes.get_last_error())
                finally:
                    self._k32.CloseHandle(process)
            except OSError:
                self._k32.CloseHandle(self._handle)
                raise

        def _set_flags(self, flags: int) -> None:
            info = _ExtendedLimits()
            info.BasicLimitInformation.LimitFlags = flags
            if not self._k32.SetInformationJobObject(
                self._handle, _JOB_OBJECT_EXTENDED_LIMIT_INFORMATION, ctypes.byref(info), ctypes.sizeof(info)
            ):
                raise ctypes.WinError(ctypes.get_last_error())

        def terminate(self) -> None:
            if self._handle:
                self._k32.TerminateJobObject(self._handle, 1)

        def close(self, *, kill: bool) -> None:
            if not self._handle:
                return
            if not kill:
                with contextlib.suppress(OSError):
                    self._set_flags(0)  # a normal end leaves background survivors alone, as on POSIX
            self._k32.CloseHandle(self._handle)
            self._handle = None

else:

    class _Job:
        """Windows only."""

        def __init__(self, pid: int) -> None:
            raise OSError("job objects are Windows only")

        def terminate(self) -> None:
            pass

        def close(self, *, kill: bool) -> None:
            pass
