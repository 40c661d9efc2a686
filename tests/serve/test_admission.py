"""The admission rule alone: a pure counter of tickets (no server, no event loop)."""
from __future__ import annotations

from concurrent.futures import Future

from stockdag.serve.admission import Admission


def test_admits_up_to_the_limit_and_releases_once():
    a = Admission(2)
    t1, t2 = a.admit(), a.admit()
    assert t1 and t2 and a.admit() is None and a.in_flight == 2
    t1.release()
    t1.release()  # idempotent: a done-callback and the handler may both release
    assert a.in_flight == 1 and a.released == 1
    assert a.admit() is not None and a.in_flight == 2 and a.admitted == 3


def test_a_handed_over_ticket_is_released_by_its_work_not_by_the_handler():
    a = Admission(1)
    ticket = a.admit().hand_over()
    work = Future()
    work.add_done_callback(ticket.release)
    assert ticket.handed_over and a.in_flight == 1  # the handler gave up (504); the work still runs
    work.set_result({"ok": True})
    assert a.in_flight == 0


def test_work_cancelled_before_it_starts_releases_its_ticket():
    a = Admission(1)
    ticket = a.admit().hand_over()
    work = Future()
    work.add_done_callback(ticket.release)
    assert work.cancel() and a.in_flight == 0
