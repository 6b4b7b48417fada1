"""Campaigns, pacing (unlimited / progressive / predictive), ACD queue and agent states.

Everything in this package is sans-IO: no asyncio, sockets or clocks. Time comes in as integer
milliseconds (``now_ms``), deadlines go out as data (``get_timer()``), and the outside world is
reached only through the protocols of :mod:`.ports`. The same code is driven by the real call
layer and by the simulator (:mod:`.simulation`, ``bench/dialer_sim.py``).

Modules
-------
====================  ===========================================================================
``ports``             the interface to calls/: ``CallControl`` (originate / bridge / hang_up /
                      abandon / robot_takes),
                      ``OperatorRinger`` (ring_operator / stop_ringing / start_hold_music) and the
                      frozen events they report (``CallRinging``, ``CallAnswered``, ``AmdResult``,
                      ``CallEnded(outcome)``, ``OperatorAnswered`` / ``Declined`` / ``RingTimeout``)
``agents``            ``AgentStateMachine`` (one table of transitions, intervals out, wrap-up
                      deadline) and ``AgentRoster`` (all operators, shared by every project)
``agent_stats``       ``operator_statistics()``: the columns of manual §6.3 from intervals
``acd``               ``AcdQueue``: one project's queue, five strategies, queue/operator timeouts,
                      directed offers for operator tasks
``pacing``            ``PacingInput``, ``UnlimitedPacer``, ``ProgressivePacer``
``predictive``        ``PredictivePacer``: how many calls to place, which ringing dials to
                      withdraw, and the meaning of «Процент предиктивного набора»
``predictive_model``  its measurements: talk / wrap-up fits and the dial-outcome life table
``schedule``          ``CampaignSchedule``: project dates, weekday intervals, client local time
``retries``           ``RetryPolicy``: per-outcome interval lists and attempt limits
``selection``         ``pick_contacts()``: due contacts in dialling order, blacklist, run switch
``simulation``        the benchmark's call world driving the real pacer, queue and agents
``campaign``          one running project: its parts built from storage, its dials in flight
``runtime``           ``CampaignRuntime``, the asyncio shell described below
``runtime_dialling``  operator tasks, callbacks and the base: picked, claimed, originated
``runtime_worker``    the runtime's ordered storage worker
``statuses``          ``OperatorStatuses``: the status an operator chose (pending while on a
                      call) and his own calls, as roster triggers
====================  ===========================================================================

How the campaign runtime will be wired (the asyncio shell, one per process)
--------------------------------------------------------------------------
One ``CampaignRuntime`` (in the composition root's service layer) owns, for the whole process,
one ``AgentRoster`` and, per running project, an ``AcdQueue``, a pacer and the project's
``CampaignSchedule`` / ``RetryPolicy`` / ``ProjectRunSwitch``. It is the only thing that awaits:

1. *Wake-ups.* It arms one ``loop.call_at`` for the earliest of: the pacing tick (about 1 s),
   every queue's ``get_timer()``, the roster's ``get_timer()`` (wrap-up limits). On wake-up it
   calls ``handle_timer(now_ms)`` on whatever is due, carries out the returned actions and
   re-arms. ``now_ms`` is the loop's monotonic clock mapped to epoch milliseconds once at start.
2. *Pacing.* Per running project, on each tick and after every call or operator event:
   ``n = pacer.calls_to_place(PacingInput(...))`` built from the roster (the project's operators),
   the project's unresolved dials and ``queue.waiting_count``. A predictive project first
   withdraws (``hang_up``: CANCEL) the dials ``pacer.dials_to_withdraw`` names among those that
   rang the project's minimum ring time unanswered. If ``n > 0`` it asks storage for
   due candidates (``ContactsRepository.due_for_dialling(project_id, now_ms, limit)``: contacts
   whose next-attempt time has passed, callbacks and operator tasks, with upload order and IANA
   zone) and passes them through ``pick_contacts(...)`` (blacklist, client local time, order,
   run switch), then ``CallControl.originate(contact, settings)`` for each; it marks each contact
   as "in progress" in storage in the same step so that no other node or tick dials it twice.
   Before the pacer is asked, operator tasks with «Совершать звонок автоматически» that are due
   are dialled for their own operators, each reserved first (``AcdQueue.reserve``) so the
   answered call reaches him alone; an operator who is not available keeps his task waiting.
3. *Call events* from calls/ (on the in-process bus):
   ``CallAnswered`` → wait for AMD; ``AmdResult(HUMAN)`` or AMD off → ``queue.enqueue(call_id)``;
   ``AmdResult(MACHINE)`` → ``hang_up``; ``CallEnded`` → ``RetryPolicy.after_call(history,
   outcome, ended_ms)`` and storage saves the new ``AttemptHistory`` and next-attempt time; the
   pacer gets ``observe_dial`` / ``observe_person`` / ``observe_talk``. A person still waiting
   when the customer hangs up → ``queue.customer_left``.
4. *Queue actions*: ``RingOperator`` → ``OperatorRinger.ring_operator``; ``StopRinging`` →
   ``stop_ringing``; ``StartHoldMusic``; ``BridgeCall`` → ``CallControl.bridge``; ``AbandonCall``
   → ``abandon`` (the project's message, then the release) with outcome ABANDONED. Operator
   events go back to ``queue.on_operator_event``.
   When any operator becomes AVAILABLE, ``dispatch(now_ms)`` runs on every queue they belong to.
5. *Operator actions* from the workspace (status buttons, «Сохранить» on the card) are roster
   triggers. Every closed ``AgentStateInterval`` from ``roster.drain_intervals()`` goes to
   storage (the status history) and to the event bus (live monitoring); §6.3 reports call
   ``operator_statistics()`` over those rows.
6. *Stopping* a project flips its ``ProjectRunSwitch``: the next pick returns nothing, so no new
   call starts; calls in progress finish normally.

Stored values stay exact integers: times in epoch milliseconds, durations in milliseconds,
retry intervals in minutes as configured, money (in calls/ and storage) in kopecks.
"""
