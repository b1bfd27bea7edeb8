"""device/pipeline.py's bookkeeping, on a scripted device: the requests in flight, the order
answers are read in, what a link error drops and what a LIST re-run keeps (the emulated
board runs it in tests/e2e/test_verify.py)."""

from __future__ import annotations

import pytest
from tinyscope.device import pipeline
from tinyscope.device import protocol as proto
from tinyscope.device.link import LinkError


class ScriptedDevice:
    """Records what is sent and answered; ``fail`` holds bank indices whose next read fails."""

    def __init__(self) -> None:
        self.sent: list[int] = []  # bank index of each send_from_bank, in order
        self.read: list[int] = []  # bank index of each answer read, in order
        self.device_queue: list[int] = []  # what the device will answer next, in order
        self.fail: set[int] = set()
        self.hellos = 0
        self.seq = 0

    def send_from_bank(self, index, mode=proto.RunMode.NONE, ops=(), **flags):
        self.seq += 2
        self.sent.append(index)
        self.device_queue.append(index)
        return (index, self.seq)

    def finish_from_bank(self, seqs, output=True):
        index = seqs[0]
        while self.device_queue and self.device_queue[0] != index:  # stale answers skipped
            self.device_queue.pop(0)
        assert self.device_queue and self.device_queue[0] == index, "answer never sent"
        self.device_queue.pop(0)
        if index in self.fail:
            self.fail.discard(index)
            raise LinkError(f"damaged answer of {index}")
        self.read.append(index)
        return f"result {index}"

    def run_from_bank(self, index, mode, ops, **flags):
        return self.finish_from_bank(self.send_from_bank(index, mode, ops, **flags))

    def hello(self):
        self.hellos += 1
        self.device_queue.clear()  # the device served (or lost) everything before HELLO


def _run_all(runs: pipeline.BankRuns, n: int) -> list[str]:
    return [runs.run(i, range(i + 1, min(i + pipeline.DEPTH, n))) for i in range(n)]


def test_each_image_is_sent_once_ahead_and_read_once_in_order():
    dev = ScriptedDevice()
    results = _run_all(pipeline.BankRuns(dev, retries=0), 6)
    assert results == [f"result {i}" for i in range(6)]
    assert dev.sent == list(range(6)) and dev.read == list(range(6))
    runs = pipeline.BankRuns(dev := ScriptedDevice(), retries=0)
    runs.run(0, [1, 2, 3, 4])  # never more than DEPTH in flight
    assert runs.in_flight == [1, 2] and dev.sent == [0, 1, 2]


def test_a_link_error_drops_the_requests_in_flight_and_sends_the_image_again():
    dev = ScriptedDevice()
    dev.fail = {2}
    results = _run_all(pipeline.BankRuns(dev, retries=1), 6)
    assert results == [f"result {i}" for i in range(6)]
    assert dev.hellos == 1
    assert dev.read == list(range(6))  # each image read once
    assert dev.sent.count(2) == 2 and dev.sent.count(3) == 2  # 3 was in flight: sent again
    dev = ScriptedDevice()
    dev.fail = {1}
    runs = pipeline.BankRuns(dev, retries=0)
    runs.run(0, [1, 2])
    with pytest.raises(LinkError):
        runs.run(1, [2, 3])


def test_a_list_rerun_keeps_the_answers_in_flight_for_their_turn():
    dev = ScriptedDevice()
    runs = pipeline.BankRuns(dev, retries=0)
    assert runs.run(0, [1, 2]) == "result 0"
    assert runs.run_now(0, proto.RunMode.LIST, [3]) == "result 0"  # after 1 and 2's answers
    assert dev.read == [0, 1, 2, 0] and runs.in_flight == []
    assert runs.run(1, [2, 3]) == "result 1" and runs.run(2, [3]) == "result 2"
    assert runs.run(3) == "result 3"
    assert dev.read == [0, 1, 2, 0, 3] and dev.sent == [0, 1, 2, 0, 3]


def test_a_real_board_gets_one_image_at_a_time():
    """A real board's UART (the Nucleo's USART: no FIFO) would overrun with requests sent
    ahead: only the emulated board, whose link holds them, is pipelined."""
    assert pipeline.depth_for("qemu-mps2-an386") == pipeline.DEPTH > 1
    assert pipeline.depth_for("nucleo-f446re") == 1
    dev = ScriptedDevice()
    runs = pipeline.BankRuns(dev, retries=0, depth=pipeline.depth_for("nucleo-f446re"))
    assert [runs.run(i, range(i + 1, 4)) for i in range(4)] == [f"result {i}" for i in range(4)]
    assert runs.in_flight == [] and dev.sent == dev.read == [0, 1, 2, 3]
    runs.run(0, [1, 2])
    assert runs.in_flight == []  # nothing sent ahead
