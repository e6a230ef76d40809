"""The Engine.IO server: checks each request, opens sessions, routes to transports.

The checks and their order follow the Node reference, and so do the answers: HTTP 400
(403 for refusals) with a ``{"code": N, "message": "..."}`` body.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any

import gevent
import orjson

from geventsio._types import DisconnectReason, EngineSid
from geventsio.engine import polling
from geventsio.engine.cors import cors_headers, origin_allowed
from geventsio.engine.eio3 import EngineSocketV3, V3WebSocket, supports_binary
from geventsio.engine.events import EventEmitter
from geventsio.engine.http import (
    EngineErrorCode,
    HttpResponse,
    error_from,
    parse_query,
)
from geventsio.engine.observer import EngineError, EngineObserver, Observers, combine
from geventsio.engine.routing import FORWARDED_KEY, SessionRouter
from geventsio.engine.socket import EngineHandler, EngineSocket
from geventsio.engine.takeover import (
    GEVENT_WEBSOCKET_KEY,
    SOCKET_KEY,
    Hosts,
    answered_by_server,
    set_nodelay_for,
    upgrade_requested,
)
from geventsio.engine.websocket import WebSocketConnection
from geventsio.exceptions import RemoteProtocolError
from geventsio.options import EngineOptions, Transport
from geventsio.protocol.engineio import Packet
from geventsio.protocol.outgoing import OutgoingPacket
from geventsio.protocol.session import Handshake, SessionState
from geventsio.protocol.websocket_handshake import SUPPORTED_VERSION

logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]

_RECENTLY_CLOSED_KEPT = 1024

#: Each transport by its name in a query (a StrEnum's ``.value`` is a Python-level property).
_TRANSPORT_NAMED = {transport.value: transport for transport in Transport}

#: Environ values copied into a session's handshake record (the rest holds live objects).
_HANDSHAKE_SCALARS = (str, int, float, bool)


class _Request:
    """A checked Engine.IO request (a plain class, native when compiled: one is made on
    every request)."""

    def __init__(
        self,
        transport: Transport,
        session: EngineSocket | None,
        forward: bool = False,
        protocol: int = 4,
        binary: bool = True,
    ) -> None:
        self.transport = transport
        self.session = session
        #: The session is another process's: forward the request to it (see ``router``).
        self.forward = forward
        #: The Engine.IO revision of the request's ``EIO``: 4, or 3 with ``allow_eio3``.
        self.protocol = protocol
        #: The client takes binary (Engine.IO v3 only: no ``b64`` in the query).
        self.binary = binary


def new_sid() -> EngineSid:
    """An unguessable session id (120 bits from the OS's CSPRNG)."""
    return EngineSid(secrets.token_urlsafe(15))


def handshake_environ(environ: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the plain values of a WSGI environ, safe to keep for a session's life."""
    return {k: v for k, v in environ.items() if isinstance(v, _HANDSHAKE_SCALARS)}


class EngineServer(EventEmitter):
    """Engine.IO v4 over long-polling and WebSocket (and v3, with ``allow_eio3``: see
    :mod:`geventsio.engine.eio3`).

    Its events, as the Node reference's (``engine.on(event, listener)``):

    - ``connection(session)``: a handshake succeeded;
    - ``connection_error(error)``: a request was refused (an :class:`EngineError`:
      ``environ``, ``code``, ``message``, ``context``);
    - ``initial_headers(headers, environ)``: the handshake's answer is about to be sent;
      set items of the ``headers`` dict to add response headers;
    - ``headers(headers, environ)``: the same for every answer (the handshake's included)
      that is no error.

    :param handler: the layer above (Socket.IO), told of sessions and messages.
    :param options: the engine options.
    """

    EVENTS = frozenset({"connection", "connection_error", "initial_headers", "headers"})

    def __init__(self, handler: EngineHandler, options: EngineOptions | None = None) -> None:
        self.handler = handler
        self.options = options or EngineOptions()
        self.sessions: dict[EngineSid, EngineSocket] = {}
        #: Told of sessions, packets and refusals (metrics, the Admin UI); see
        #: :meth:`add_observer`.
        self.observer: EngineObserver | None = None
        #: Set by ``close_all(refuse_new=True)``: new sessions are refused with 503.
        self.shutting_down = False
        #: How connections are taken over from the server running the application.
        self.hosts = Hosts()
        #: Starts a greenlet for a WebSocket served apart from its request, with a
        #: function of no arguments: a raw greenlet, or (set by the Socket.IO server) one
        #: of its parked greenlets (see :class:`~geventsio.server.workers.WorkerPool`).
        self.spawn: Callable[[Callable[[], None]], Any] = gevent.spawn_raw
        #: Set when this process is one of several (:mod:`geventsio.cluster`): it names
        #: the owner in each new sid and forwards requests for other processes' sessions.
        self.router: SessionRouter | None = None
        # The last sids closed here: a late request for one of them is no routing mistake.
        self._recently_closed: OrderedDict[str, None] = OrderedDict()

    def add_observer(self, observer: EngineObserver) -> None:
        """Tell ``observer`` too of what happens from now on."""
        self.observer = combine(self.observer, observer, Observers)

    # -- the WSGI entry point ----------------------------------------------------------

    def handle_request(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        """Serve one HTTP request for the Engine.IO path."""
        if SOCKET_KEY not in environ:  # geventsio's handler set it on the connection
            set_nodelay_for(environ)
        policy = self.options.cors_allowed_origins
        origin = environ.get("HTTP_ORIGIN")
        # Asked once per request (a callable policy is the application's code), and
        # the answer passed on to the checks; no Origin: allowed, and no CORS headers.
        origin_ok = not origin or origin_allowed(policy, environ)
        cors = (
            cors_headers(policy, self.options.cors_credentials, environ)
            if origin and origin_ok
            else []
        )
        try:
            response = self._route(environ, start_response, origin_ok)
        except RemoteProtocolError as exc:
            logger.info(
                "refused %s %s?%s: %s",
                environ.get("REQUEST_METHOD"),
                environ.get("PATH_INFO"),
                environ.get("QUERY_STRING"),
                exc.message,
            )
            response = error_from(exc)
            self._report_refusal(environ, exc)
        if response is None:  # the connection was taken over or is gone
            return []
        status = response.status
        if status >= 400 and answered_by_server(environ):
            # The server (gevent-websocket) answered 101 before we saw the request: all
            # that is left is to close the WebSocket it opened (1008: policy violation).
            self.hosts.refuse_after_101(environ, _message_of(response))
            return []
        headers = [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(response.body))),
            *response.headers,
            *cors,
            *self.options.extra_headers,
        ]
        if status < 400:
            if self._listeners:
                headers.extend(self._custom_headers("headers", environ))
        elif status == 426:
            headers.append(("Sec-WebSocket-Version", SUPPORTED_VERSION))
        connection = environ.get("HTTP_CONNECTION")
        if status == 413 or (connection is not None and str(connection).lower() == "close"):
            # Say so: some servers (pywsgi) close without telling, and Node 19+ clients
            # then report "socket hang up" on their next request. After a 413 the body
            # is not worth reading: close.
            headers.append(("Connection", "close"))
        start_response(response.status_line, headers)
        return [response.body]

    def _report_refusal(self, environ: Mapping[str, Any], exc: RemoteProtocolError) -> None:
        if self.observer is None and not self._listeners:
            return
        code = exc.code if exc.code is not None else int(EngineErrorCode.BAD_REQUEST)
        error = EngineError(environ, code, exc.message, exc.context)
        if self.observer is not None:
            self.observer.request_refused(error)
        self.emit_event("connection_error", error)

    def _custom_headers(self, event: str, environ: Mapping[str, Any]) -> list[tuple[str, str]]:
        """The headers the ``event`` listeners set (Node's ``headers``/``initial_headers``)."""
        headers: dict[str, str] = {}
        self.emit_event(event, headers, environ)
        return [(str(name), str(value)) for name, value in headers.items()]

    def _route(
        self, environ: dict[str, Any], start_response: StartResponse, origin_ok: bool
    ) -> HttpResponse | None:
        """The answer to a request; ``origin_ok``: its Origin passes the CORS policy."""
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "OPTIONS":
            if not origin_ok:
                raise RemoteProtocolError(
                    "Origin not allowed", code=EngineErrorCode.FORBIDDEN, status=403
                )
            return HttpResponse(204)
        request = self._verify(environ, origin_ok)
        if request.forward:
            assert self.router is not None
            return self.router.forward(environ, start_response)
        upgrade = "HTTP_UPGRADE" in environ or GEVENT_WEBSOCKET_KEY in environ  # else: no
        if upgrade and upgrade_requested(environ):
            return self._serve_websocket(environ, start_response, request)
        if request.transport is not Transport.POLLING:
            raise RemoteProtocolError(
                "WebSocket handshake expected", code=EngineErrorCode.BAD_REQUEST
            )
        if request.session is None:
            return self._open_polling(environ, request)
        if method == "GET":
            return polling.handle_get(request.session, environ)
        if method == "POST":
            return polling.handle_post(request.session, environ)
        raise RemoteProtocolError(f"method {method} not allowed", code=EngineErrorCode.BAD_REQUEST)

    # -- checks ------------------------------------------------------------------------

    def _verify(self, environ: Mapping[str, Any], origin_ok: bool) -> _Request:
        query = parse_query(environ)
        transport = self._transport_of(query)
        protocol = 4 if query.get("EIO") == "4" else self._protocol_of(query)
        if not origin_ok:
            raise RemoteProtocolError(
                "Origin not allowed",
                code=EngineErrorCode.FORBIDDEN,
                status=403,
                context={"origin": environ.get("HTTP_ORIGIN")},
            )
        sid = query.get("sid")
        if sid is not None:
            session = self.sessions.get(EngineSid(sid))
            if session is None or session.state is SessionState.CLOSED:
                if (
                    session is None
                    and self.router is not None
                    and FORWARDED_KEY not in environ
                    and self.router.owner_elsewhere(sid)
                ):
                    return _Request(transport, None, forward=True, protocol=protocol)
                if transport is Transport.POLLING and sid not in self._recently_closed:
                    logger.info(
                        "unknown session id %r on a polling request: if this server runs "
                        "in several processes that do not share sessions (several hosts, "
                        "generate_id set), every request of a long-polling session must "
                        "reach the process that opened it: enable sticky sessions in the "
                        "load balancer, or use WebSocket only (see docs/deployment.md)",
                        sid[:32],
                    )
                raise RemoteProtocolError(
                    "Session ID unknown", code=EngineErrorCode.UNKNOWN_SID, context={"sid": sid}
                )
            if transport is not Transport.POLLING and not self.options.allow_upgrades:
                raise RemoteProtocolError("Upgrades are disabled", code=EngineErrorCode.BAD_REQUEST)
            protocol = session.protocol
            # ``binary`` matters to Engine.IO v3 sessions only (their WebSocket upgrade).
            return _Request(
                transport, session, False, protocol, protocol == 4 or supports_binary(query)
            )
        if environ.get("REQUEST_METHOD") != "GET":
            raise RemoteProtocolError(
                "Bad handshake method",
                code=EngineErrorCode.BAD_HANDSHAKE_METHOD,
                context={"method": environ.get("REQUEST_METHOD")},
            )
        if self.shutting_down and not answered_by_server(environ):
            # A client reconnecting to a process that is going away: let it try another.
            # (After a 101 the official client hears no refusal until its connect timeout,
            # 20 s: such a session is opened and closed at once, see _run_direct_websocket.)
            raise RemoteProtocolError(
                "Server shutting down", code=EngineErrorCode.BAD_REQUEST, status=503
            )
        self._check_allow_request(environ)
        return _Request(transport, None, protocol=protocol, binary=supports_binary(query))

    def _protocol_of(self, query: Mapping[str, str]) -> int:
        """The Engine.IO revision a request speaks: ``EIO=4``, or ``EIO=3`` when
        ``allow_eio3`` is set (socket.io-client 2.x); anything else is refused with
        Node's code 5."""
        version = query.get("EIO")
        if version == "4":
            return 4
        if version == "3" and self.options.allow_eio3:
            return 3
        raise RemoteProtocolError(
            "Unsupported protocol version",
            code=EngineErrorCode.UNSUPPORTED_PROTOCOL_VERSION,
            context={"protocol": version},
        )

    def _transport_of(self, query: Mapping[str, str]) -> Transport:
        name = query.get("transport")
        transport = _TRANSPORT_NAMED.get(name) if name is not None else None
        if transport is not None and transport in self.options.transports:
            return transport
        raise RemoteProtocolError(
            "Transport unknown", code=EngineErrorCode.UNKNOWN_TRANSPORT, context={"transport": name}
        )

    def _check_allow_request(self, environ: Mapping[str, Any]) -> None:
        hook = self.options.allow_request
        if hook is None:
            return
        try:
            allowed = hook(environ)
        except Exception:
            logger.exception("allow_request raised; refusing the request")
            allowed = False
        if not allowed:
            raise RemoteProtocolError(
                "Forbidden",
                code=EngineErrorCode.FORBIDDEN,
                status=403,
                context={"message": "allow_request refused the request"},
            )

    # -- sessions ----------------------------------------------------------------------

    def _generate_id(self, environ: Mapping[str, Any]) -> EngineSid:
        """A new session id: the ``generate_id`` option's, else :func:`new_sid`.

        :raises RemoteProtocolError: ``generate_id`` failed or gave no usable id.
        """
        generate = self.options.generate_id
        if generate is None:
            return new_sid() if self.router is None else self.router.new_sid()
        try:
            sid = generate(environ)
        except Exception as exc:
            logger.exception("generate_id raised; refusing the handshake")
            raise RemoteProtocolError(
                "Bad request",
                code=EngineErrorCode.BAD_REQUEST,
                context={"name": "ID_GENERATION_ERROR", "error": repr(exc)},
            ) from exc
        if not isinstance(sid, str) or not sid or sid in self.sessions:
            logger.error("generate_id gave %r: not a new non-empty string", sid)
            raise RemoteProtocolError(
                "Bad request",
                code=EngineErrorCode.BAD_REQUEST,
                context={"name": "ID_GENERATION_ERROR", "error": "not a new non-empty string"},
            )
        return EngineSid(sid)

    def _new_session(
        self, sid: EngineSid, kept_environ: dict[str, Any], request: _Request
    ) -> EngineSocket:
        """A new session keeping ``kept_environ`` (a :func:`handshake_environ` copy)."""
        args = (sid, self.options, kept_environ, self.handler, self)
        session = (
            EngineSocket(*args, request.transport)
            if request.protocol == 4
            else EngineSocketV3(*args, request.transport, binary=request.binary)
        )
        self.sessions[session.sid] = session
        return session

    def _open_packet(self, session: EngineSocket, upgrades: list[str]) -> Packet:
        options = self.options
        return Handshake(
            session.sid,
            tuple(upgrades),
            options.ping_interval,
            options.ping_timeout,
            options.max_payload,
        ).to_packet()

    def _upgrades_for_polling(self) -> list[str]:
        if self.options.allow_upgrades and Transport.WEBSOCKET in self.options.transports:
            return ["websocket"]
        return []

    def _open_polling(self, environ: dict[str, Any], request: _Request) -> HttpResponse:
        if self.router is not None:
            self.router.check_new_polling()
        session = self._new_session(self._generate_id(environ), handshake_environ(environ), request)
        open_packet = OutgoingPacket(self._open_packet(session, self._upgrades_for_polling()))
        response = session.payload_codec.encode((open_packet,))
        response.headers = self._handshake_headers(session, environ)
        self._connect(session)
        return response

    def _handshake_headers(
        self, session: EngineSocket, environ: Mapping[str, Any]
    ) -> list[tuple[str, str]]:
        headers = self._cookie_headers(session)
        if self._listeners:
            headers.extend(self._custom_headers("initial_headers", environ))
        return headers

    def _connect(self, session: EngineSocket) -> None:
        session.start()
        handler = self.handler.on_engine_connect(session)
        if handler is not None:
            session.handler = handler
        logger.debug("session %s opened on %s", session.sid, session.transport)
        if self.observer is not None:
            self.observer.session_opened(session)
        self.emit_event("connection", session)

    def _cookie_headers(self, session: EngineSocket) -> list[tuple[str, str]]:
        cookie = self.options.cookie
        if cookie is None:
            return []
        parts = [
            f"{cookie.name}={session.sid}",
            f"Path={cookie.path}",
            f"SameSite={cookie.same_site}",
        ]
        if cookie.http_only:
            parts.append("HttpOnly")
        if cookie.secure:
            parts.append("Secure")
        return [("Set-Cookie", "; ".join(parts))]

    def session_closed(self, socket: EngineSocket) -> None:
        """Forget a closed session (called by the session itself)."""
        if self.sessions.get(socket.sid) is socket:
            del self.sessions[socket.sid]
        self._recently_closed[socket.sid] = None
        if len(self._recently_closed) > _RECENTLY_CLOSED_KEPT:
            self._recently_closed.popitem(last=False)
        logger.debug("session %s closed: %s", socket.sid, socket.close_reason)

    # -- WebSocket ---------------------------------------------------------------------

    def _serve_websocket(
        self, environ: dict[str, Any], start_response: StartResponse, request: _Request
    ) -> HttpResponse | None:
        if request.transport is not Transport.WEBSOCKET:
            raise RemoteProtocolError(
                "a WebSocket upgrade on a polling URL", code=EngineErrorCode.BAD_REQUEST
            )
        session = request.session
        if not self.hosts.can_take_over(environ):
            raise RemoteProtocolError(
                "this server cannot take a connection over for WebSocket",
                code=EngineErrorCode.BAD_REQUEST,
            )
        headers: list[tuple[str, str]] = []
        new_sid_: EngineSid | None = None
        if session is None:
            new_sid_ = self._generate_id(environ)
        if self._listeners:
            if session is None:
                headers.extend(self._custom_headers("initial_headers", environ))
            headers.extend(self._custom_headers("headers", environ))
        websocket = self._accept(environ, start_response, headers)
        if request.protocol == 3:
            websocket = V3WebSocket(websocket, request.binary)
        # Copied once, for the session (not the request's own: it holds the request).
        kept = handshake_environ(environ) if session is None else {}
        if websocket.detached:
            # The connection no longer needs the HTTP request: serve it from a greenlet of
            # its own and let the request's greenlet (and all it holds) end. A raw
            # greenlet: a gevent.Greenlet would keep, for the connection's whole life, its
            # spawning stack and links (about 1 KiB) that nothing here uses.
            self.spawn(partial(self._run_websocket_logged, kept, request, websocket, new_sid_))
            return None
        self._run_websocket(kept, request, websocket, new_sid_)
        return None

    def _run_websocket_logged(
        self,
        kept_environ: dict[str, Any],
        request: _Request,
        websocket: WebSocketConnection,
        new_sid_: EngineSid | None,
    ) -> None:
        """:meth:`_run_websocket` in a greenlet of its own, whose error is logged here."""
        try:
            self._run_websocket(kept_environ, request, websocket, new_sid_)
        except Exception:
            logger.exception("the WebSocket's greenlet failed")

    def _run_websocket(
        self,
        kept_environ: dict[str, Any],
        request: _Request,
        websocket: WebSocketConnection,
        new_sid_: EngineSid | None = None,
    ) -> None:
        """Run the WebSocket: a new session's (keeping ``kept_environ``, a
        :func:`handshake_environ` copy), or the upgrade of ``request``'s session."""
        session = request.session
        if session is not None and (
            session.websocket is not None or session.upgrading or session.polling is None
        ):
            # As the Node reference does: accept, then close at once.
            logger.info("session %s: refused a second WebSocket", session.sid)
            websocket.close_and_wait(1008, "session already upgraded")
        elif session is None:
            assert new_sid_ is not None
            self._run_direct_websocket(new_sid_, kept_environ, request, websocket)
        elif session.upgrade(websocket):
            session.run_websocket()

    def _accept(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        headers: list[tuple[str, str]],
    ) -> WebSocketConnection:
        return self.hosts.accept(
            environ,
            start_response,
            max_message_size=self.options.max_payload,
            max_fragments=self.options.max_websocket_fragments,
            max_buffer_size=self.options.max_buffer_size,
            extra_headers=headers,
            deflate=self.options.deflate,
        )

    def _run_direct_websocket(
        self,
        sid: EngineSid,
        kept_environ: dict[str, Any],
        request: _Request,
        websocket: WebSocketConnection,
    ) -> None:
        session = self._new_session(sid, kept_environ, request)
        session.attach_websocket(websocket)
        session.send_packets((OutgoingPacket(self._open_packet(session, [])),))
        self._connect(session)
        if self.shutting_down:  # the server answered 101 before we could refuse (503)
            session.close(DisconnectReason.SERVER_SHUTTING_DOWN)
        session.run_websocket()

    # -- shutdown ----------------------------------------------------------------------

    def close_all(
        self,
        reason: DisconnectReason = DisconnectReason.SERVER_SHUTTING_DOWN,
        drain_timeout: float = 2.0,
        *,
        refuse_new: bool = False,
    ) -> None:
        """Close every session, giving queued data up to ``drain_timeout`` to leave.

        :param refuse_new: the process is going away: answer new handshakes with 503 from
            now on, so that reconnecting clients find another server.
        """
        self.shutting_down = self.shutting_down or refuse_new
        sessions = list(self.sessions.values())
        for session in sessions:
            session.close(reason)
        deadline = time.monotonic() + drain_timeout
        for session in sessions:
            session.drain(max(deadline - time.monotonic(), 0.0))
        # Polling clients collect their last packets with their next GET; give them until
        # the deadline, then forget what is left (as the Node reference does).
        while time.monotonic() < deadline and any(
            s.state is SessionState.CLOSING for s in sessions
        ):
            gevent.sleep(0.02)
        for session in sessions:
            session.forget()


def _message_of(response: HttpResponse) -> str:
    """The message of one of Node's error bodies (the body itself otherwise)."""
    try:
        return str(orjson.loads(response.body)["message"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return response.body.decode("utf-8", "replace")
