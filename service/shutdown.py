"""Graceful shutdown of a serving process: unready first, then stop.

A load balancer (a Kubernetes Service, nginx) keeps sending requests to a process
until it learns that the process is going away. uvicorn, on SIGTERM, closes its
listening socket and the idle keep-alive connections at once: a request the balancer
sends in that moment fails. So on the first SIGTERM a serving worker only marks itself
*draining*: `/readyz` answers 503 (`{"status": "draining"}`), everything else is
served as before, and after `shutdown_drain_seconds` the signal is handed to uvicorn,
which stops accepting, lets requests in flight finish (up to
`graceful_shutdown_seconds`) and runs the lifespan shutdown. A second SIGTERM hands
it over at once. Kubernetes removes the pod from its endpoints when termination
begins, so the chart may drain with a `preStop` sleep instead (or both); the total
must stay under `terminationGracePeriodSeconds` (docs/operations.md).

The handler wraps uvicorn's own one, installed by the worker's lifespan (main thread,
inside uvicorn's `capture_signals`), so it works the same with one worker and with
`--workers N`, whose supervisor forwards SIGTERM to every worker.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

log = logging.getLogger("pingyi.shutdown")


class Drain:
    """Whether this process is draining; `install` arms it for SIGTERM."""

    def __init__(self) -> None:
        self.draining = False

    def begin(self) -> None:
        if not self.draining:
            self.draining = True
            log.info("SIGTERM: draining (readyz answers 503; requests still served)")

    def install(self, seconds: float) -> Callable[[], None]:
        """Arm the drain for SIGTERM in the running loop; return the disarming call.

        Does nothing (returns a no-op) unless `seconds > 0`, in the main thread, with a
        Python-level SIGTERM handler (uvicorn's) to hand the signal to afterwards."""
        if seconds <= 0 or threading.current_thread() is not threading.main_thread():
            return _nothing
        previous = signal.getsignal(signal.SIGTERM)
        if not callable(previous):
            return _nothing
        loop = asyncio.get_running_loop()
        handed_over = False

        def hand_over(signum: int, frame: FrameType | None) -> None:
            nonlocal handed_over
            if not handed_over:
                handed_over = True
                previous(signum, frame)

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            if self.draining:  # a second SIGTERM: stop now
                hand_over(signum, frame)
                return
            self.begin()
            # A signal handler runs between bytecodes of the loop's thread: schedule
            # through the thread-safe entry, which also wakes a sleeping loop.
            loop.call_soon_threadsafe(loop.call_later, seconds, hand_over, signum, None)

        signal.signal(signal.SIGTERM, on_sigterm)

        def uninstall() -> None:
            if signal.getsignal(signal.SIGTERM) is on_sigterm:
                signal.signal(signal.SIGTERM, previous)

        return uninstall


def _nothing(*args: Any) -> None:
    return None
