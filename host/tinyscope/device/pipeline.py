"""Images of the device's input bank run back to back, the next image's requests already
queued on the link.

Without it every image is a round trip: the device sends its answer (OUTPUT, TIMING,
DIGEST, DONE), then waits while the host wakes up, reads and checks that answer and sends
the next USE_INPUT + RUN. With two emulated boards on two cores that wait was a quarter of
each board's time (docs/bench.md, capture section). :class:`BankRuns` sends image i+1's
USE_INPUT + RUN before it reads image i's answer: the device reads a request only after it
has sent the whole answer of the one before (firmware/app/main.c), so the queued requests
wait on the link (QEMU's socket, a UART's host-side buffer) and the device starts image i+1
as soon as image i's answer is out.

No image is lost or counted twice: a request's answer is read once, by the one call that
asks for its image, in the order the requests were sent. A link error drops every request in
flight (its answers, if they still come, carry other ``seq`` s and are skipped as stale),
HELLO resynchronises, and the image is sent again; an image whose request was in flight when
the capture stopped is simply not done (``--resume`` does it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import TypeVar

from tinyscope.device import protocol as proto
from tinyscope.device.link import Device, LinkError, RunResult

DEPTH = 3  # images whose requests may be on the link at once (host stalls of up to ~2 images)
READ_PAUSE = 0.001  # s to let an answer arrive before reading it while the next image is queued
# Boards (INFO ``board``) whose receive side holds requests sent ahead: QEMU's CMSDK UART
# takes a byte only once the guest has read the one before, the rest wait in its socket.
# A real board's UART (the Nucleo's USART: no FIFO, no DMA) would overrun while the model
# runs, so there the requests of one image at a time.
HOLDS_QUEUED_REQUESTS = ("qemu-mps2-an386",)


def depth_for(board: str) -> int:
    """How many images' requests may be in flight on ``board`` (INFO's board name)."""
    return DEPTH if board in HOLDS_QUEUED_REQUESTS else 1


T = TypeVar("T")


class BankRuns:
    """RUN (mode NONE, flags ``timing``/``output``/``digest``) of input-bank images on
    ``dev``, up to ``depth`` images' requests in flight (:func:`depth_for`); a link error
    retries the image up to ``retries`` times (HELLO, then send again)."""

    def __init__(self, dev: Device, retries: int, timing: bool = True, output: bool = True,
                 digest: bool = True, depth: int = DEPTH) -> None:
        self.dev, self.retries, self.depth = dev, retries, depth
        self.flags = {"timing": timing, "output": output, "digest": digest}
        self._queued: deque[tuple[int, tuple[int, int]]] = deque()  # (bank index, seqs)
        self._held: dict[int, RunResult] = {}  # answers read ahead of their turn (run_now)

    def run(self, slot: int, upcoming: Sequence[int] = ()) -> RunResult:
        """The answer of bank image ``slot``; the requests of the ``upcoming`` images (up to
        ``depth`` in flight in all) are queued before it is read, so that the device goes on to
        them without waiting for the host."""
        def attempt() -> RunResult:
            if slot not in self._held and (not self._queued or self._queued[0][0] != slot):
                self._drop()  # not what the device serves next: start again from slot
                self._send(slot)
            for s in upcoming:
                if len(self._queued) >= self.depth:
                    break
                if s not in self._held and s not in self.in_flight:
                    self._send(s)
            if slot in self._held:
                return self._held.pop(slot)
            _, seqs = self._queued.popleft()
            return self._finish(seqs)

        return self._retrying(attempt)

    def run_now(self, slot: int, mode: proto.RunMode, ops: Sequence[int],
                **flags: bool) -> RunResult:
        """A RUN of bank image ``slot`` outside the pipeline (e.g. LIST of the operators whose
        digests differ): the answers of the requests in flight come first and are kept for
        :meth:`run`, then this one is sent and read."""
        def attempt() -> RunResult:
            while self._queued:
                s, seqs = self._queued[0]
                self._held[s] = self.dev.finish_from_bank(seqs, self.flags["output"])
                self._queued.popleft()
            return self.dev.run_from_bank(slot, mode, ops, **flags)

        return self._retrying(attempt)

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """``attempt()``, again after HELLO (the requests in flight dropped) on a link error,
        up to ``retries`` times."""
        for k in range(self.retries + 1):
            try:
                if k:
                    self._resync()
                return attempt()
            except LinkError:
                if k == self.retries:
                    raise
        raise AssertionError("unreachable")

    def _finish(self, seqs: tuple[int, int]) -> RunResult:
        """Read one image's answers; lazily (Device.read_pause) if the device has the next
        image queued: it does not wait for us, and fewer, larger reads cost less CPU."""
        self.dev.read_pause = READ_PAUSE if self._queued else 0.0
        try:
            return self.dev.finish_from_bank(seqs, self.flags["output"])
        finally:
            self.dev.read_pause = 0.0

    @property
    def in_flight(self) -> list[int]:
        """Bank indices whose requests were sent and whose answers were not read."""
        return [s for s, _ in self._queued]

    def _send(self, slot: int) -> None:
        self._queued.append((slot, self.dev.send_from_bank(slot, proto.RunMode.NONE, (),
                                                           **self.flags)))

    def _drop(self) -> None:
        self._queued.clear()

    def _resync(self) -> None:
        self._drop()
        self.dev.hello()
