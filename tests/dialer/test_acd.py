"""ACD queue: each strategy picks the right operator; timeouts move on and abandon."""

import pytest

from sipspeak.dialer.acd import (
    AbandonCall,
    AcdQueue,
    BridgeCall,
    QueueAction,
    QueueSettings,
    QueueStrategy,
    RingOperator,
    StartHoldMusic,
    StopRinging,
)
from sipspeak.dialer.agents import (
    AgentRoster,
    AgentState,
    AgentTrigger,
    IllegalAgentTransition,
)
from sipspeak.dialer.ports import (
    OperatorAnswered,
    OperatorDeclined,
    OperatorRingTimeout,
)

OPS = (11, 12, 13, 14)


def make(
    strategy: QueueStrategy,
    *,
    ops: tuple[int, ...] = OPS,
    available: tuple[int, ...] = OPS,
    roster: AgentRoster | None = None,
    queue_timeout_ms: int = 60_000,
    operator_timeout_ms: int = 10_000,
    music: bool = False,
) -> tuple[AcdQueue, AgentRoster]:
    if roster is None:
        roster = AgentRoster()
        for op in ops:
            roster.add(
                op, 0, AgentState.AVAILABLE if op in available else AgentState.PAUSED
            )
    queue = AcdQueue(
        settings=QueueSettings(
            strategy=strategy,
            queue_timeout_ms=queue_timeout_ms,
            operator_timeout_ms=operator_timeout_ms,
            operator_ids=ops,
            auto_answer=True,
            music_on_hold=music,
        ),
        roster=roster,
    )
    return queue, roster


def rings(actions: list[QueueAction]) -> list[RingOperator]:
    return [a for a in actions if isinstance(a, RingOperator)]


def serve(queue: AcdQueue, roster: AgentRoster, call_id: str, now: int) -> int:
    """Enqueue a call, let the first rung operator answer, finish the call; return who took it."""
    ring = rings(queue.enqueue(call_id, now))[0]
    actions = queue.on_operator_event(
        OperatorAnswered(ring.ring_id, ring.operator_id, now + 1)
    )
    assert BridgeCall(call_id, ring.operator_id, 1) in actions
    roster.fire(ring.operator_id, AgentTrigger.CALL_ENDED, now + 2)
    roster.fire(ring.operator_id, AgentTrigger.CARD_SAVED, now + 3)
    return ring.operator_id


def test_linear_always_rings_the_first_free_in_list_order() -> None:
    queue, roster = make(QueueStrategy.LINEAR, available=(12, 13, 14))
    assert [serve(queue, roster, f"c{i}", i * 10) for i in range(3)] == [12, 12, 12]


def test_round_robin_continues_after_the_one_who_answered_last() -> None:
    queue, roster = make(QueueStrategy.ROUND_ROBIN)
    taken = [serve(queue, roster, f"c{i}", i * 10) for i in range(6)]
    assert taken == [11, 12, 13, 14, 11, 12]


def test_round_robin_skips_busy_operators_and_wraps_around() -> None:
    queue, roster = make(QueueStrategy.ROUND_ROBIN, available=(11, 12, 14))
    assert serve(queue, roster, "a", 0) == 11
    assert serve(queue, roster, "b", 10) == 12
    assert serve(queue, roster, "c", 20) == 14  # 13 is paused
    assert serve(queue, roster, "d", 30) == 11


def test_fewest_calls_rings_who_answered_least() -> None:
    queue, roster = make(QueueStrategy.FEWEST_CALLS, available=(11,))
    for i in range(3):
        serve(queue, roster, f"x{i}", i * 10)
    roster.fire(12, AgentTrigger.SET_AVAILABLE, 100)
    roster.fire(13, AgentTrigger.SET_AVAILABLE, 100)
    assert serve(queue, roster, "y1", 200) == 12
    assert serve(queue, roster, "y2", 210) == 13
    assert serve(queue, roster, "y3", 220) == 12
    assert queue.answered_count(11) == 3 and queue.answered_count(12) == 2


def test_longest_idle_rings_who_answered_longest_ago() -> None:
    queue, roster = make(QueueStrategy.LONGEST_IDLE, available=(11, 12, 13))
    assert serve(queue, roster, "a", 0) == 11  # nobody answered yet: list order
    assert serve(queue, roster, "b", 10) == 12
    assert serve(queue, roster, "c", 20) == 13
    assert serve(queue, roster, "d", 30) == 11
    # 12 is paused now; 13 last answered at 20, before 11 (at 30): 13 has waited longer.
    roster.fire(12, AgentTrigger.SET_PAUSED, 35)
    assert serve(queue, roster, "e", 40) == 13


def test_ring_all_rings_every_free_operator_and_first_answer_wins() -> None:
    queue, roster = make(QueueStrategy.RING_ALL, available=(11, 13, 14))
    actions = queue.enqueue("c", 0)
    rung = rings(actions)
    assert sorted(r.operator_id for r in rung) == [11, 13, 14]
    assert all(roster.state(r.operator_id) is AgentState.RINGING for r in rung)
    winner = next(r for r in rung if r.operator_id == 13)
    after = queue.on_operator_event(OperatorAnswered(winner.ring_id, 13, 500))
    stopped = sorted(a.operator_id for a in after if isinstance(a, StopRinging))
    assert stopped == [11, 14]
    assert BridgeCall("c", 13, 500) in after
    assert (
        roster.state(11) is AgentState.AVAILABLE
        and roster.state(13) is AgentState.TALKING
    )


def test_operator_timeout_moves_on_to_the_next_operator() -> None:
    queue, roster = make(QueueStrategy.LINEAR, operator_timeout_ms=12_000)
    first = rings(queue.enqueue("c", 0))[0]
    assert first.operator_id == 11 and queue.get_timer() == 12_000
    assert queue.handle_timer(11_999) == []
    actions = queue.handle_timer(12_000)
    assert StopRinging(first.ring_id, 11) in actions
    assert [r.operator_id for r in rings(actions)] == [12]
    assert roster.state(11) is AgentState.AVAILABLE
    assert roster.state(12) is AgentState.RINGING


def test_declined_or_phone_side_timeout_moves_on_without_retrying_the_same_operator() -> (
    None
):
    queue, _ = make(QueueStrategy.LINEAR, available=(11, 12))
    first = rings(queue.enqueue("c", 0))[0]
    second = rings(queue.on_operator_event(OperatorDeclined(first.ring_id, 11, 1_000)))[
        0
    ]
    assert second.operator_id == 12
    third = rings(
        queue.on_operator_event(OperatorRingTimeout(second.ring_id, 12, 2_000))
    )[0]
    # Everybody was tried: the group starts over.
    assert third.operator_id == 11


def test_queue_timeout_abandons_the_customer_and_stops_the_ring() -> None:
    queue, roster = make(
        QueueStrategy.LINEAR, queue_timeout_ms=44_000, operator_timeout_ms=60_000
    )
    ring = rings(queue.enqueue("c", 1_000))[0]
    actions = queue.handle_timer(45_000)
    assert StopRinging(ring.ring_id, ring.operator_id) in actions
    assert AbandonCall("c", 44_000) in actions
    assert not queue.is_waiting("c") and queue.get_timer() is None
    assert roster.state(ring.operator_id) is AgentState.AVAILABLE
    # A late answer from the phone is ignored.
    assert (
        queue.on_operator_event(
            OperatorAnswered(ring.ring_id, ring.operator_id, 45_001)
        )
        == []
    )


def test_waiting_call_is_offered_when_an_operator_becomes_free() -> None:
    queue, roster = make(QueueStrategy.LONGEST_IDLE, available=(), music=True)
    actions = queue.enqueue("c", 0)
    assert actions == [StartHoldMusic("c")]
    roster.fire(14, AgentTrigger.SET_AVAILABLE, 1_500)
    assert [r.operator_id for r in rings(queue.dispatch(1_500))] == [14]


def test_customer_hanging_up_while_waiting_is_abandoned() -> None:
    queue, _ = make(QueueStrategy.LINEAR, available=())
    queue.enqueue("c", 0)
    assert queue.customer_left("c", 3_000) == [AbandonCall("c", 3_000)]
    assert queue.waiting_count == 0


def test_operator_in_two_projects_is_not_offered_by_the_second_while_busy() -> None:
    roster = AgentRoster()
    for op in (1, 2):
        roster.add(op, 0, AgentState.AVAILABLE)
    sales, _ = make(QueueStrategy.LINEAR, ops=(1, 2), roster=roster)
    support, _ = make(QueueStrategy.LINEAR, ops=(1,), roster=roster)
    assert rings(sales.enqueue("s1", 0))[0].operator_id == 1
    assert rings(support.enqueue("p1", 1)) == []
    ring = rings(sales.enqueue("s2", 2))[0]
    assert ring.operator_id == 2


def test_fifo_the_longest_waiting_customer_is_served_first() -> None:
    queue, roster = make(QueueStrategy.LINEAR, available=())
    queue.enqueue("first", 0)
    queue.enqueue("second", 10)
    roster.fire(11, AgentTrigger.SET_AVAILABLE, 20)
    assert [r.call_id for r in rings(queue.dispatch(20))] == ["first"]


def test_settings_reject_nonsense() -> None:
    with pytest.raises(ValueError):
        QueueSettings(QueueStrategy.LINEAR, 0, 10, (1,))
    with pytest.raises(ValueError):
        QueueSettings(QueueStrategy.LINEAR, 10, 10, (1, 1))


def test_a_reserved_operator_gets_his_answered_call_and_no_other() -> None:
    queue, roster = make(QueueStrategy.LONGEST_IDLE, available=(11, 12))
    queue.reserve("task", 12, 0)
    assert roster.state(12) is AgentState.RINGBACK  # «Слушает гудки» while it is dialled
    assert queue.reserved_operator("task") == 12
    # A pool call meanwhile goes to the other operator, never to the reserved one.
    assert [r.operator_id for r in rings(queue.enqueue("pool", 10))] == [11]
    # The task's contact answered: only his operator is rung, at once.
    actions = queue.enqueue("task", 20)
    assert [(r.operator_id, r.call_id) for r in rings(actions)] == [(12, "task")]
    assert roster.state(12) is AgentState.RINGING
    assert queue.directed_waiting_count == 1
    answered = queue.on_operator_event(OperatorAnswered(rings(actions)[0].ring_id, 12, 25))
    assert BridgeCall("task", 12, 5) in answered
    assert roster.state(12) is AgentState.TALKING


def test_a_released_reservation_gives_the_operator_back_to_the_pool() -> None:
    queue, roster = make(QueueStrategy.LINEAR, available=(11,))
    queue.reserve("task", 11, 0)
    assert rings(queue.enqueue("pool", 5)) == []  # the only operator is held
    actions = queue.release("task", 30)  # busy: no person will come
    assert roster.state(11) is AgentState.RINGING
    assert [(r.operator_id, r.call_id) for r in rings(actions)] == [(11, "pool")]
    assert queue.release("task", 40) == []


def test_only_an_available_operator_can_be_reserved() -> None:
    queue, roster = make(QueueStrategy.LINEAR, available=(11,))
    with pytest.raises(IllegalAgentTransition):
        queue.reserve("a", 12, 0)  # paused
    roster.fire(12, AgentTrigger.SET_DO_NOT_DISTURB, 1)
    with pytest.raises(IllegalAgentTransition):
        queue.reserve("a", 12, 2)
    assert roster.state(12) is AgentState.DO_NOT_DISTURB
    with pytest.raises(ValueError):
        queue.reserve("a", 99, 3)  # not in this queue
    queue.reserve("a", 11, 4)
    with pytest.raises(ValueError):
        queue.reserve("a", 11, 5)


def test_a_directed_call_waits_for_its_operator_until_the_queue_timeout() -> None:
    queue, roster = make(QueueStrategy.LINEAR, available=(11, 12), queue_timeout_ms=30_000,
                         operator_timeout_ms=10_000)
    queue.reserve("task", 12, 0)
    ring = rings(queue.enqueue("task", 1_000))[0]
    # He declines: the call is not handed to 11, it waits for him.
    again = queue.on_operator_event(OperatorDeclined(ring.ring_id, 12, 2_000))
    assert [(r.operator_id, r.call_id) for r in rings(again)] == [(12, "task")]
    assert roster.state(11) is AgentState.AVAILABLE
    # He lets it ring out; the queue timeout then abandons it.
    assert queue.get_timer() == 12_000
    out = queue.handle_timer(12_000)
    assert StopRinging(rings(again)[0].ring_id, 12) in out
    assert [r.operator_id for r in rings(out)] == [12]
    out = queue.handle_timer(31_000)
    assert AbandonCall("task", 30_000) in out
    assert roster.state(11) is AgentState.AVAILABLE
    assert roster.state(12) is AgentState.AVAILABLE


def test_a_directed_call_takes_its_operator_before_the_pool_does() -> None:
    queue, roster = make(QueueStrategy.LINEAR, available=())
    assert rings(queue.enqueue("pool", 0)) == []
    assert rings(queue.enqueue("mine", 1, operator_id=11)) == []
    roster.fire(11, AgentTrigger.SET_AVAILABLE, 2)
    actions = queue.dispatch(2)
    assert [(r.operator_id, r.call_id) for r in rings(actions)] == [(11, "mine")]
    assert queue.waiting_count == 2 and queue.directed_waiting_count == 1
