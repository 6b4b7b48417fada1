"""The asyncio shell of the SIP core: UDP, TCP, TLS and WebSocket transports (RFC 3261 §18,
§26; RFC 7118).

``SipEndpoint(ua)`` binds a sans-IO ``UserAgent`` to the running loop:

* ``await listen_udp(host, port=0)``, ``await listen_tcp(host, port=0)``,
  ``await listen_ws(host, port=0, path="/")`` — each returns the bound
  ``Address`` (port 0 picks a free port) and announces it to the user agent.
  WebSocket uses aiohttp and requires the ``sip`` subprotocol (RFC 7118 §4.1);
  every WebSocket message carries exactly one SIP message (§5).
* ``await listen_tls(host, port=0, context=…)`` — TCP with a server ``ssl.SSLContext``
  (``sip.tls.server_context``): framed and answered like TCP, the source's transport is
  ``TLS`` (RFC 3261 §26.2.1), so responses and later requests to a phone registered over
  it go back on its connection.  No outgoing TLS connection is opened: a TLS destination
  without a live connection is logged and dropped.
* One ``loop.call_at`` timer, re-armed after every input from ``ua.get_timer()``;
  the clock handed to the core is ``loop.time()``.
* Events from the core go to ``on_event(event)`` if set, else to the
  ``events`` queue.  After the application acts on a session (answer, BYE …)
  the core calls ``ua.wakeup``, which schedules a flush on the loop.
* Outgoing messages: UDP ``sendto``; TCP/WebSocket to the connection the
  destination names, else an existing or new TCP connection to host:port.
* No exception escapes a transport callback: it is logged and the input dropped.
* ``await close()`` closes every socket and connection and cancels the timer.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any, cast

from aiohttp import WSMsgType, web

from sipspeak.sip.errors import SipError
from sipspeak.sip.events import Address, MessageRejected, Transmit, TransportName
from sipspeak.sip.framing import StreamFramer
from sipspeak.sip.message import SipRequest
from sipspeak.sip.useragent import UserAgent

log = logging.getLogger("sipspeak.sip.transport")

UDP_BUFFER_BYTES = 4 * 1024 * 1024
#: A TLS client that has not finished its handshake by then is dropped.
TLS_HANDSHAKE_TIMEOUT = 10.0


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: SipEndpoint, local: Address) -> None:
        self.endpoint = endpoint
        self.local = local

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if not data.strip(b"\r\n"):
            return  # CRLF keep-alive (RFC 5626 §3.5.1 style pings over UDP)
        self.endpoint.received(data, Address("UDP", str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.info("UDP error on %s: %s", self.local, exc)


class _TcpProtocol(asyncio.Protocol):
    """One TCP connection (or TLS over it), framed by Content-Length (RFC 3261 §18.3)."""

    def __init__(self, endpoint: SipEndpoint, transport_name: TransportName = "TCP") -> None:
        self.endpoint = endpoint
        self.transport_name = transport_name
        self.framer = StreamFramer()
        self.transport: asyncio.Transport | None = None
        self.address: Address | None = None
        self.connection_id = next(endpoint.connection_ids)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(
            asyncio.Transport, transport
        )  # a stream protocol gets a Transport
        peer = transport.get_extra_info("peername")
        self.address = Address(self.transport_name, str(peer[0]), int(peer[1]),
                               self.connection_id)
        self.endpoint.connections[self.connection_id] = self

    def data_received(self, data: bytes) -> None:
        address = self.address
        if address is None or self.transport is None:
            return
        self.framer.feed(data)
        pings = self.framer.keepalives
        try:
            while (message := self.framer.next_message()) is not None:
                self.endpoint.received(message, address)
        except SipError as exc:
            log.info("closing %s: %s", address, exc.reason)
            self.transport.close()
            return
        if self.framer.keepalives != pings:
            self.transport.write(b"\r\n")  # pong (RFC 5626 §3.5.1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.endpoint.connections.pop(self.connection_id, None)
        if self.address is not None:
            key = (self.address.host, self.address.port)
            if self.endpoint.tcp_by_peer.get(key) is self:
                del self.endpoint.tcp_by_peer[key]

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


class _WsConnection:
    def __init__(self, ws: web.WebSocketResponse, connection_id: int) -> None:
        self.ws = ws
        self.connection_id = connection_id
        self.pending: set[asyncio.Task[None]] = set()

    def send(self, data: bytes) -> None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            task = asyncio.get_running_loop().create_task(self.ws.send_bytes(data))
        else:
            task = asyncio.get_running_loop().create_task(self.ws.send_str(text))
        # owned: kept until done, cancelled by close()
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)


class SipEndpoint:
    """See the module docstring."""

    def __init__(self, ua: UserAgent) -> None:
        self.ua = ua
        self.loop = asyncio.get_running_loop()
        self.on_event: Callable[[object], None] | None = None
        self.events: asyncio.Queue[object] = asyncio.Queue()
        self.connection_ids = itertools.count(1)
        self.connections: dict[int, _TcpProtocol | _WsConnection] = {}
        self.tcp_by_peer: dict[tuple[str, int], _TcpProtocol] = {}
        self._udp: dict[str, asyncio.DatagramTransport] = {}
        self._servers: list[asyncio.Server] = []
        self._runners: list[web.AppRunner] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._flush_scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        ua.wakeup = self._wakeup

    # ------------------------------------------------------------ listening
    async def listen_udp(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        buffer_bytes: int = UDP_BUFFER_BYTES,
    ) -> Address:
        """Bind UDP; large socket buffers absorb bursts while the loop is busy
        (the kernel caps them at net.core.rmem_max / wmem_max)."""
        local_holder: list[Address] = []

        def factory() -> _UdpProtocol:
            return _UdpProtocol(
                self, local_holder[0] if local_holder else Address("UDP", host, port)
            )

        transport, _ = await self.loop.create_datagram_endpoint(
            factory, local_addr=(host, port)
        )
        sock = transport.get_extra_info("socket")
        if sock is not None and buffer_bytes:
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, option, buffer_bytes)
                except OSError as exc:
                    log.info("cannot size the UDP buffer: %s", exc)
        sockname = transport.get_extra_info("sockname")
        local = Address("UDP", host, int(sockname[1]))
        local_holder.append(local)
        self._udp[host] = transport
        self.ua.add_local_address(local)
        return local

    async def listen_tcp(self, host: str = "127.0.0.1", port: int = 0) -> Address:
        server = await self.loop.create_server(lambda: _TcpProtocol(self), host, port)
        self._servers.append(server)
        local = Address("TCP", host, int(server.sockets[0].getsockname()[1]))
        self.ua.add_local_address(local)
        return local

    async def listen_tls(
        self, host: str = "127.0.0.1", port: int = 0, *, context: ssl.SSLContext
    ) -> Address:
        """Accept SIP over TLS (RFC 3261 §26.2.1: SIP over TLS is TCP with TLS under it)."""
        server = await self.loop.create_server(
            lambda: _TcpProtocol(self, "TLS"), host, port, ssl=context,
            ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT)
        self._servers.append(server)
        local = Address("TLS", host, int(server.sockets[0].getsockname()[1]))
        self.ua.add_local_address(local)
        return local

    @property
    def stream_connections(self) -> list[Address]:
        """The peers of the open TCP and TLS connections (accepted or opened)."""
        return [c.address for c in self.connections.values()
                if isinstance(c, _TcpProtocol) and c.address is not None]

    async def listen_ws(
        self, host: str = "127.0.0.1", port: int = 0, path: str = "/"
    ) -> Address:
        app = web.Application()
        app.router.add_get(path, self._ws_handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runners.append(runner)
        bound = port
        for address in runner.addresses:  # the sockets actually bound (port 0 resolved)
            if isinstance(address, tuple) and len(address) >= 2:
                bound = int(address[1])
                break
        local = Address("WS", host, bound)
        self.ua.add_local_address(local)
        return local

    async def _ws_handler(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(protocols=("sip",))
        await ws.prepare(request)
        if ws.ws_protocol != "sip":
            await ws.close(
                code=1002, message=b"the sip subprotocol is required (RFC 7118)"
            )
            return ws
        connection = _WsConnection(ws, next(self.connection_ids))
        self.connections[connection.connection_id] = connection
        peer = (
            request.transport.get_extra_info("peername") if request.transport else None
        )
        address = Address(
            "WS",
            str(peer[0]) if peer else "0.0.0.0",
            int(peer[1]) if peer else 0,
            connection.connection_id,
        )
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self.received(msg.data.encode("utf-8"), address)
                elif msg.type == WSMsgType.BINARY:
                    self.received(msg.data, address)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.connections.pop(connection.connection_id, None)
        return ws

    # ------------------------------------------------------------ core I/O
    def received(self, data: bytes, source: Address) -> None:
        """One SIP message from the network; nothing raised here leaves the transport."""
        try:
            self.ua.receive_data(data, source, self.loop.time())
        except Exception:
            log.exception("dropping a message from %s that broke the SIP core", source)
        self.flush()

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        try:
            self.ua.handle_timer(self.loop.time())
        except Exception:
            log.exception("SIP timer processing failed")
        self.flush()

    def _wakeup(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self.flush()

    def flush(self) -> None:
        """Send what the core queued, hand out its events and re-arm the timer."""
        try:
            self.ua.process_pending(self.loop.time())
            for item in self.ua.messages_to_send():
                self._send(item)
            while (event := self.ua.next_event()) is not None:
                self._deliver(event)
        except Exception:
            log.exception("SIP flush failed")
        self._arm()

    def _deliver(self, event: object) -> None:
        if isinstance(event, MessageRejected):
            log.info("rejected message from %s: %s", event.source, event.reason)
            return
        if self.on_event is None:
            self.events.put_nowait(event)
            return
        try:
            self.on_event(event)
        except Exception:
            log.exception("SIP event handler failed on %r", type(event).__name__)

    def _arm(self) -> None:
        deadline = self.ua.get_timer()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def _send(self, item: Transmit) -> None:
        destination = item.destination
        data = item.message.serialize()
        try:
            if destination.transport == "UDP":
                transport = next(iter(self._udp.values()))
                transport.sendto(data, (destination.host, destination.port))
            elif destination.connection is not None:
                connection = self.connections.get(destination.connection)
                if connection is None:
                    log.info(
                        "connection %s to %s is gone",
                        destination.connection,
                        destination.host,
                    )
                    return
                connection.send(data)
            elif destination.transport == "TCP":
                self._send_tcp(destination, data)
            elif destination.transport == "TLS":
                # A phone registered over TLS is reached on its connection (above); a new
                # outgoing TLS connection would need a verified server name (RFC 5922).
                log.info("no TLS connection to %s:%s: dropping %s", destination.host,
                         destination.port, item.message.call_id)
            else:
                log.info("no way to send to %s", destination)
        except Exception:
            call_id = item.message.call_id
            what = (
                item.message.method
                if isinstance(item.message, SipRequest)
                else item.message.status
            )
            log.exception(
                "sending %s of call %s to %s failed", what, call_id, destination
            )

    def _send_tcp(self, destination: Address, data: bytes) -> None:
        existing = self.tcp_by_peer.get((destination.host, destination.port))
        if existing is not None:
            existing.send(data)
            return

        async def connect() -> None:
            try:
                _, protocol = await self.loop.create_connection(
                    lambda: _TcpProtocol(self), destination.host, destination.port
                )
            except OSError as exc:
                log.info(
                    "TCP connect to %s:%s failed: %s",
                    destination.host,
                    destination.port,
                    exc,
                )
                return
            self.tcp_by_peer[(destination.host, destination.port)] = protocol
            protocol.send(data)

        task = self.loop.create_task(connect())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        for connection in list(self.connections.values()):
            if isinstance(connection, _TcpProtocol):
                if connection.transport is not None:
                    connection.transport.close()
            else:
                for task in list(connection.pending):
                    task.cancel()
                await connection.ws.close()
        for transport in self._udp.values():
            transport.close()
        for server in self._servers:
            server.close()
            await server.wait_closed()
        for runner in self._runners:
            await runner.cleanup()
