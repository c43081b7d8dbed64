"""Commands with the same `serial` key take turns in one API process (api/serial.py)."""

from __future__ import annotations

import threading
import time

from api.guards import WORK_GATE
from api.serial import SERIAL

_one_at_a_time = SERIAL.one_at_a_time


def test_same_key_never_overlaps_and_a_waiter_gives_its_turn_back() -> None:
    inside: list[int] = []
    overlaps: list[int] = []
    turns = {"given_back": 0, "taken_again": 0}
    holder_in = threading.Event()

    def holder() -> None:
        with _one_at_a_time(("riskbook", 1)):
            inside.append(1)
            holder_in.set()
            time.sleep(0.2)
            overlaps.append(len(inside))
            inside.pop()

    def waiter() -> None:
        holder_in.wait()
        with WORK_GATE.admitted(lambda: turns.__setitem__("given_back", turns["given_back"] + 1),
                                lambda: turns.__setitem__("taken_again", turns["taken_again"] + 1)), \
                _one_at_a_time(("riskbook", 1)):
            overlaps.append(len(inside))

    threads = [threading.Thread(target=holder), threading.Thread(target=waiter)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert overlaps == [1, 0]  # the waiter ran only after the holder left
    assert turns == {"given_back": 1, "taken_again": 1}  # and did not sit on a turn meanwhile


def test_other_keys_and_no_key_do_not_wait() -> None:
    keys = [("riskbook", n) for n in range(1, 200)]
    free = next(k for k in keys if hash(k) % 64 != hash(("riskbook", 1)) % 64)
    with _one_at_a_time(("riskbook", 1)):
        done = threading.Event()

        def other() -> None:
            with _one_at_a_time(free), _one_at_a_time(None):
                done.set()

        threading.Thread(target=other).start()
        assert done.wait(2)
