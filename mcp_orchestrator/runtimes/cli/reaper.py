"""How a CLI's exit reaches the event loop on Python 3.11: a pidfd in the loop's selector, not a thread.

asyncio before 3.12 watches every child with ``ThreadedChildWatcher``: one new thread per process, blocked in
``waitpid``, that wakes the loop when it exits. That thread is started and torn down at every step (bench
``cli_overhead``). ``PidfdReaper`` instead adds the child's pidfd to the running loop's selector and reaps it
there once it is readable; it takes the loop at each call, so loops in several threads (a portal, the tests)
share it safely. Python 3.12+ does the same by itself, so nothing is changed there.
"""

from __future__ import annotations

import asyncio
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any, TypeVarTuple, Unpack

__all__ = ["use_pidfd_reaper"]

_installed = False
_Ts = TypeVarTuple("_Ts")


def use_pidfd_reaper() -> None:
    """Reap this process's children through pidfds from now on (Python 3.11 on Linux; elsewhere a no-op)."""
    global _installed
    if _installed or sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        return
    _installed = True
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:  # a kernel before 5.3, or a sandbox without the call: keep asyncio's threads
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_child_watcher(_PidfdReaper())


class _PidfdReaper(asyncio.AbstractChildWatcher):
    """A child watcher that needs no thread and no attached loop (the loop is the caller's)."""

    def add_child_handler(self, pid: int, callback: Callable[[int, int, Unpack[_Ts]], object], *args: *_Ts) -> None:
        loop = asyncio.get_running_loop()
        pidfd = os.pidfd_open(pid)
        loop.add_reader(pidfd, self._reap, loop, pidfd, pid, callback, args)

    @staticmethod
    def _reap(
        loop: asyncio.AbstractEventLoop, pidfd: int, pid: int, callback: Callable[..., object], args: tuple[Any, ...]
    ) -> None:
        loop.remove_reader(pidfd)
        try:
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
        except ChildProcessError:  # reaped elsewhere: asyncio's own watchers report 255 then
            code = 255
        finally:
            os.close(pidfd)
        callback(pid, code, *args)

    def remove_child_handler(self, pid: int) -> bool:
        return True  # the handler goes with its pidfd once the child exits

    def attach_loop(self, loop: Any) -> None:
        return None

    def is_active(self) -> bool:
        return True

    def close(self) -> None:
        return None

    def __enter__(self) -> _PidfdReaper:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
