"""How long-running commands stop: on SIGTERM, SIGINT or SIGHUP, everything they started stops.

Under a supervisor (systemd, a container runtime, a shell script running us in the background)
SIGINT is often ignored at start-up, and Python then installs no KeyboardInterrupt handler; and
SIGTERM's default action kills the process outright, without a ``finally``. Either way the
children (broker, services) were left running as orphans. So every long-running command installs
one handler for all three signals explicitly, overriding an inherited SIG_IGN.

The handler raises :class:`StopRequested` once, in the main thread, wherever it is (starting,
waiting, publishing); the command's ``finally`` then stops its children. Once stopping has begun
further signals are ignored, so a second Ctrl-C or a supervisor's repeated SIGTERM cannot cut the
clean stop short (the children themselves are SIGKILLed after a timeout).

``StopRequested`` is a KeyboardInterrupt so that ``asyncio.run`` treats it as one: it cancels the
running tasks (consumers close) before the exception reaches the command.
"""

from __future__ import annotations

import asyncio
import ctypes
import signal
import time
from collections.abc import Callable, Coroutine
from types import FrameType, TracebackType
from typing import Any, TypeVar

T = TypeVar("T")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

#: prctl(2) option: the signal the kernel sends a child when its parent dies.
_PR_SET_PDEATHSIG = 1


class StopRequested(KeyboardInterrupt):
    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


class StopSignals:
    """``with StopSignals() as stop:`` — SIGTERM/SIGINT/SIGHUP raise StopRequested once."""

    def __init__(self) -> None:
        self._stopping = False
        self._previous: dict[int, object] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping:
            return
        self._stopping = True
        raise StopRequested(signum)

    def stopping(self) -> None:
        """From here on signals are ignored: the caller is already stopping everything."""
        self._stopping = True

    def __enter__(self) -> StopSignals:
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def run(self, main: Callable[[], Coroutine[Any, Any, T]]) -> T | None:
        """``asyncio.run(main())``, where a stop signal cancels ``main`` (its ``finally`` blocks
        close consumers) and returns None. Raising from a signal handler inside the event loop
        would land in whatever callback runs, so inside the loop the loop's own handlers are
        used; asyncio resets them to SIG_DFL when the loop closes, so ours are put back."""
        stopped: list[int] = []

        async def runner() -> T | None:
            loop = asyncio.get_running_loop()
            task = asyncio.current_task()
            assert task is not None

            def on_signal(sig: int) -> None:
                if not stopped and not self._stopping:
                    stopped.append(sig)
                    task.cancel()

            for sig in STOP_SIGNALS:
                loop.add_signal_handler(sig, on_signal, sig)
            try:
                return await main()
            except asyncio.CancelledError:
                if not stopped:
                    raise
                return None

        try:
            result = asyncio.run(runner())
        finally:
            for sig in STOP_SIGNALS:
                signal.signal(sig, self._handler)
        if stopped:
            if self._stopping:
                return None
            self._stopping = True
            raise StopRequested(stopped[0])
        return result

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)  # type: ignore[arg-type]


def wait_for_stop(duration: float = 0) -> None:
    """Block until a stop signal (raises StopRequested) or, if ``duration`` > 0, that long."""
    if duration > 0:
        deadline = time.monotonic() + duration
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(left)
        return
    while True:
        signal.pause()


def die_with_parent() -> None:
    """``preexec_fn`` for children: SIGTERM them if we are killed with SIGKILL (which no handler
    can catch), so even then nothing is left running. Linux only; elsewhere a no-op."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
