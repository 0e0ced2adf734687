from wsgidaemon.gateway.balance import should_accept, should_shed
from wsgidaemon.gateway.scoreboard import Row, Scoreboard, State


def row(connections: int, busy: int = 0, state: State = State.ACCEPTING) -> Row:
    return Row(1, state, connections, busy, 0, 0.0)


def test_alone_always_accepts() -> None:
    assert should_accept(50, 4, 4, [])


def test_least_loaded_accepts_and_the_more_loaded_declines() -> None:
    assert should_accept(3, 0, 4, [row(3), row(4)])
    assert not should_accept(4, 0, 4, [row(3)])


def test_draining_and_free_rows_do_not_count() -> None:
    assert should_accept(9, 0, 4, [row(0, state=State.DRAINING), row(0, state=State.FREE)])


def test_saturated_worker_leaves_connection_to_a_peer_with_a_free_thread() -> None:
    assert not should_accept(0, 4, 4, [row(5, busy=1)])
    assert should_accept(0, 4, 4, [row(5, busy=4)])


def test_some_worker_always_accepts() -> None:
    loads = [(5, 2), (3, 4), (3, 1), (7, 4)]
    rows = [row(c, b) for c, b in loads]
    verdicts = [
        should_accept(c, b, 4, [r for j, r in enumerate(rows) if j != i])
        for i, (c, b) in enumerate(loads)
    ]
    assert any(verdicts)


def test_a_worker_sheds_while_it_holds_two_more_than_the_least_loaded_peer() -> None:
    assert should_shed(8, [row(0)])
    assert should_shed(5, [row(3), row(9)])
    assert not should_shed(4, [row(3)])  # one more is as even as 7 connections get
    assert not should_shed(4, [row(4)])


def test_no_shedding_towards_draining_or_starting_workers_or_without_peers() -> None:
    assert not should_shed(8, [])
    assert not should_shed(8, [row(0, state=State.DRAINING), row(0, state=State.STARTING)])


def test_shedding_one_at_a_time_evens_connections_out() -> None:
    """What the shim's reconnections do with it: each one shed lands on the least loaded."""
    loads = [9, 0, 2]
    for _ in range(20):
        shedding = [
            i
            for i, held in enumerate(loads)
            if should_shed(held, [row(c) for j, c in enumerate(loads) if j != i])
        ]
        if not shedding:
            break
        loads[shedding[0]] -= 1
        loads[loads.index(min(loads))] += 1
    assert sorted(loads) == [3, 4, 4]


def test_scoreboard_rows_round_trip_and_claim_free_rows() -> None:
    board = Scoreboard(3)
    first = board.claim(10, 1.0)
    second = board.claim(11, 1.0)
    assert first != second
    board.write(first, Row(10, State.ACCEPTING, 2, 1, 99, 5.5))
    assert board.read(first) == Row(10, State.ACCEPTING, 2, 1, 99, 5.5)
    board.release(first)
    assert board.read(first).state is State.FREE
    assert board.claim(12, 2.0) == first
