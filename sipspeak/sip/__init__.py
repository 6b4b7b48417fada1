"""Sans-IO SIP (RFC 3261, 3264, 4566, 7616) and its thin asyncio transports.

Layers, bottom up (each module's docstring documents its API):

* ``errors``       — ``SipError`` hierarchy; ``status_hint`` is the response to send.
* ``uri``          — ``SipUri`` / ``AbsoluteUri``, ``parse_uri``.
* ``headers``      — typed ``Via``, ``NameAddr`` (From/To/Contact/Route), ``CSeq``.
* ``message``      — ``SipRequest`` / ``SipResponse``, ``parse_message``, ``make_response``.
* ``framing``      — ``StreamFramer``: Content-Length framing for TCP / TLS / WebSocket.
* ``sdp``          — SDP and offer/answer for one audio stream (PCMU, PCMA, RFC 4733).
* ``timers``       — T1/T2/T4 and the one deadline queue of the core.
* ``transaction``  — the four §17 state machines; ``transaction_layer`` matches
  messages to them.
* ``dialog``       — §12 dialogs; ``session`` — INVITE sessions (calls) on top.
* ``useragent``    — ``UserAgent``: the sans-IO core the application talks to,
  with ``add_handler`` (REGISTER …), ``send_request`` and ``invite``.
* ``transport``    — ``SipEndpoint``: UDP, TCP, TLS (RFC 3261 §26) and WebSocket on
  asyncio; ``tls`` loads and checks the certificate and key files.
* ``digest`` / ``auth`` / ``registrar`` / ``trunk`` — authentication, registrar
  bindings and trunk registration, built on the above.
"""
