"""Call control: the only package where sip/ and media/ meet.

Modules, one concept each:

* ``state``    — sans-IO life of a call: phases, transition table, deadlines, outcome;
* ``cdr``      — every column of the calls report (durations, price, statuses);
* ``legs``     — one SIP leg and its RTP endpoint (our SDP on every leg, hold);
* ``trunks``   — trunks from storage: registrations, routes, inbound matching;
* ``phones``   — operators' phones: registrar with digest auth, where to ring;
* ``browser_signalling`` — the browser softphone's JSON messages (sans-IO);
* ``browser``  — operators' browser softphones: who is connected, WebRTC offers, the leg;
* ``ringing``  — offering a call to an operator: fork, first answer wins, auto-answer;
* ``hold``     — a party holds (re-INVITE sendonly / inactive): music to the other one;
* ``amd_tap``  — answering-machine detection fed from the bridge;
* ``call``     — what the service holds per call (the operator leg: SIP or browser);
* ``core``     — ``CallCore``: calls, tasks, events, media endpoints, per-call timers;
* ``operators``— ``OperatorSide``: ring an operator's devices, join the one who answers;
* ``service``  — ``CallService``: the dialer's ``CallControl`` and ``OperatorRinger``;
* ``entry``    — ``CallCenter``: inbound INVITEs, operators' manual calls, click-to-call;
* ``runtime``  — ``CallRuntime``: starts and stops all of it for ``sipspeak serve``.
"""
