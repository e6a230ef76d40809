"""The public Socket.IO client."""

from __future__ import annotations

import math
import ssl
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, overload

from geventsio.client.ack import Ack
from geventsio.client.dispatch import Dispatcher, Handler
from geventsio.client.http import parse_url
from geventsio.client.manager import Auth, Manager, Target
from geventsio.client.options import ClientOptions
from geventsio.client.transports import Endpoint
from geventsio.exceptions import LocalProtocolError
from geventsio.options import Transport

_H = TypeVar("_H", bound=Handler)

_DEFAULT_TRANSPORTS = (Transport.POLLING, Transport.WEBSOCKET)


class Client:
    """A Socket.IO v5 client on gevent, with automatic reconnection.

    Handlers run one at a time, in order of arrival, in one greenlet of their own: a
    slow handler delays the next ones but never the heartbeat. Every other call may be
    made from any greenlet, handlers included (except :meth:`wait`).

    Example::

        client = Client()

        @client.on("news")
        def on_news(item):
            print(item)

        client.connect("http://localhost:3000")
        print(client.call("echo", "hello"))
        client.wait()

    :param reconnection: reconnect by itself when the connection is lost (not after
        :meth:`disconnect`, nor when the server disconnected every namespace).
    :param reconnection_attempts: attempts before giving up (``reconnect_failed``).
    :param reconnection_delay: seconds before the first attempt; doubles each attempt.
    :param reconnection_delay_max: the longest delay between attempts.
    :param randomization_factor: each delay moves randomly by up to this fraction.
    :param max_buffered_emits: emits kept per namespace while disconnected (and emits
        with ``retries`` queued); one more raises
        :class:`~geventsio.client.EmitBufferFull`.
    :param request_timeout: seconds a connection attempt (TCP, TLS, handshake) and each
        HTTP request may take.
    :param ack_timeout: the default ``timeout`` of emits that ask for an ack.
    :param upgrade_timeout: seconds the upgrade from polling to WebSocket may take.
    :param max_message_size: the largest message accepted from the server, in bytes.
    :param ssl_context: the TLS context for ``https``/``wss`` URLs (by default, the
        system's trusted certificates and host name checks).
    :param ssl_verify: ``False`` skips certificate verification (testing only; not
        with ``ssl_context``).
    :param random: the random source of the reconnection jitter (for tests).
    :param serializer: ``"json"`` or ``"msgpack"`` (the server's ``serializer``; needs the
        ``msgpack`` extra), as python-socketio's client takes it.
    :param per_message_deflate: offer WebSocket compression (RFC 7692); when the server
        agrees, messages of 1 KiB or more are sent compressed (Node's client does the
        same by default).
    :raises ValueError: an option is out of range.
    """

    def __init__(
        self,
        *,
        reconnection: bool = True,
        reconnection_attempts: float = math.inf,
        reconnection_delay: float = 1.0,
        reconnection_delay_max: float = 5.0,
        randomization_factor: float = 0.5,
        max_buffered_emits: int = 1000,
        request_timeout: float = 20.0,
        ack_timeout: float | None = None,
        upgrade_timeout: float = 10.0,
        max_message_size: int = 100 * 1024 * 1024,
        ssl_context: ssl.SSLContext | None = None,
        ssl_verify: bool = True,
        random: Callable[[], float] | None = None,
        serializer: str = "json",
        per_message_deflate: bool = False,
    ) -> None:
        if not ssl_verify:
            if ssl_context is not None:
                raise ValueError("give ssl_context or ssl_verify=False, not both")
            ssl_context = ssl.create_default_context()
            ssl_context.check_hostname = False
            ssl_context.verify_mode = ssl.CERT_NONE
        extra = {} if random is None else {"random": random}
        self.options = ClientOptions(
            reconnection=reconnection,
            reconnection_attempts=reconnection_attempts,
            reconnection_delay=reconnection_delay,
            reconnection_delay_max=reconnection_delay_max,
            randomization_factor=randomization_factor,
            max_buffered_emits=max_buffered_emits,
            request_timeout=request_timeout,
            ack_timeout=ack_timeout,
            upgrade_timeout=upgrade_timeout,
            max_message_size=max_message_size,
            ssl_context=ssl_context,
            serializer=serializer,
            per_message_deflate=per_message_deflate,
            **extra,
        )
        self._dispatcher = Dispatcher()
        self._manager = Manager(self.options, self._dispatcher)

    # -- handlers --------------------------------------------------------------------

    @overload
    def on(self, event: str, handler: None = None, namespace: str = "/") -> Callable[[_H], _H]: ...

    @overload
    def on(self, event: str, handler: _H, namespace: str = "/") -> _H: ...

    def on(
        self, event: str, handler: _H | None = None, namespace: str = "/"
    ) -> Callable[[_H], _H] | _H:
        """Register the handler of an event; usable as a decorator.

        Event handlers get the event's arguments; what they return is sent back as
        the ack when the server asked for one (``None`` as no argument, a tuple as
        several). Lifecycle events, each handler given what it accepts of:

        - ``connect()``; ``disconnect(reason)``, ``reason`` being one of "io server
          disconnect", "io client disconnect", "ping timeout", "transport close",
          "transport error", "parse error"; ``connect_error(error)``, ``error`` a
          :class:`~geventsio.client.NamespaceRefused` (with the server's ``data``) or a
          :class:`~geventsio.client.ConnectFailed`;
        - for the whole connection (no namespace): ``reconnect_attempt(attempt)``,
          ``reconnect(attempt)``, ``reconnect_error(error)``, ``reconnect_failed()``;
        - ``"*"``: ``handler(event, *args)`` for events that have no handler.

        :param event: the event name.
        :param handler: the handler; omit it to use ``on`` as a decorator.
        :param namespace: the namespace.
        :raises LocalProtocolError: see :meth:`Dispatcher.register`.
        """
        if handler is None:

            def decorator(function: _H) -> _H:
                self._dispatcher.register(event, function, namespace)
                return function

            return decorator
        self._dispatcher.register(event, handler, namespace)
        return handler

    # -- connection ------------------------------------------------------------------

    def connect(
        self,
        url: str,
        namespaces: str | Iterable[str] | None = None,
        auth: Auth = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        transports: Iterable[str | Transport] | None = None,
        wait_timeout: float = 20.0,
        socketio_path: str = "/socket.io",
    ) -> None:
        """Connect, blocking until every namespace is connected.

        :param url: ``http://``, ``https://``, ``ws://`` or ``wss://``, host and port;
            its query parameters are sent with every Engine.IO request.
        :param namespaces: the namespaces to connect to; by default those that have
            handlers, or ``/`` if none has.
        :param auth: the CONNECT payload of each namespace: a dict, or a callable
            returning one, called again for each (re)connection.
        :param headers: extra HTTP headers for every request and the WebSocket handshake.
        :param transports: ``["polling", "websocket"]`` by default (start with polling,
            then upgrade); ``["websocket"]`` or ``["polling"]`` for one only.
        :param wait_timeout: seconds to wait for every namespace to connect.
        :param socketio_path: the server's Engine.IO path.
        :raises ConnectFailed: the server could not be reached (refused, DNS, TLS...),
            did not answer in time, or the connection was lost; or
            :class:`~geventsio.client.NamespaceRefused` when the server refused a
            namespace (with its ``data``). Both are ``ConnectionError``. Nothing stays
            connected then, and no reconnection follows.
        :raises LocalProtocolError: already connected, or a bad argument.
        :raises ValueError: a bad URL or transport name.
        """
        address = parse_url(url)
        names = self._namespaces(namespaces)
        chosen = tuple(Transport(t) for t in (transports or _DEFAULT_TRANSPORTS))
        if not chosen:
            raise ValueError("transports must name at least one transport")
        if auth is not None and not callable(auth) and not isinstance(auth, dict):
            raise LocalProtocolError(f"auth must be a dict or a callable, not {type(auth)}")
        pairs = list(headers.items() if isinstance(headers, Mapping) else headers or ())
        path = "/" + socketio_path.strip("/") + "/"
        target = Target(Endpoint(address, path, pairs), chosen, auth)
        self._manager.connect(target, names, wait_timeout)

    def _namespaces(self, namespaces: str | Iterable[str] | None) -> list[str]:
        if namespaces is None:
            names = self._dispatcher.namespaces() or ["/"]
        elif isinstance(namespaces, str):
            names = [namespaces]
        else:
            names = list(dict.fromkeys(namespaces))
        for name in names:
            if not isinstance(name, str) or not name.startswith("/"):
                raise LocalProtocolError(f"a namespace starts with '/', got {name!r}")
        if not names:
            raise LocalProtocolError("no namespace to connect to")
        return names

    def disconnect(self) -> None:
        """Disconnect from every namespace and close the connection, for good (no
        reconnection). Handlers get "io client disconnect"; emits still buffered and
        acks still awaited fail with :class:`~geventsio.NotConnected`. Does nothing when
        not connected.
        """
        self._manager.disconnect()

    def wait(self) -> None:
        """Block until the client is disconnected for good (by :meth:`disconnect`, by the
        server, or when reconnection gave up or is off) and its handlers have run.

        :raises LocalProtocolError: called from a handler.
        """
        self._manager.wait()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.disconnect()

    # -- state -----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether every namespace still wanted is connected now."""
        return self._manager.connected

    def sid(self, namespace: str = "/") -> str | None:
        """The socket id of a namespace, while it is connected, else ``None``."""
        return self._manager.sid(namespace)

    def recovered(self, namespace: str = "/") -> bool:
        """Whether the namespace's current connection resumed the previous one (the
        server has connection state recovery on and the client was away less than its
        window): same sid, rooms and data, and the events it missed were delivered."""
        return self._manager.recovered(namespace)

    @property
    def transport(self) -> str | None:
        """``"polling"`` or ``"websocket"`` while connected, else ``None``."""
        transport = self._manager.transport
        return None if transport is None else transport.value

    # -- emitting --------------------------------------------------------------------

    def emit(
        self,
        event: str,
        *args: Any,
        namespace: str = "/",
        callback: Callable[..., Any] | None = None,
        timeout: float | None = None,
        volatile: bool = False,
        retries: int = 0,
    ) -> Ack | None:
        """Send an event; never blocks.

        While the namespace is reconnecting, the emit waits in a buffer and goes out
        after the reconnection, unless ``volatile``.

        :param args: JSON-serialisable arguments; ``bytes`` may be nested anywhere.
        :param callback: called (in the handler greenlet) with the server's ack
            arguments.
        :param timeout: seconds to wait for the ack (default: ``ack_timeout``); the
            returned :class:`~geventsio.client.Ack` then fails with
            :class:`~geventsio.AckTimeout` and ``callback`` is not called.
        :param volatile: drop the emit, rather than buffer it, while disconnected.
        :param retries: re-send up to this many times when no ack came within
            ``timeout`` (at-least-once delivery). Such emits are sent one at a time, in
            order, each waiting for its ack.
        :returns: an :class:`~geventsio.client.Ack` when an ack was asked for (a
            ``callback``, ``timeout`` or ``retries`` given), else ``None``.
        :raises NotConnected: not connected to the namespace and not reconnecting.
        :raises EmitBufferFull: disconnected, and the buffer is full.
        :raises LocalProtocolError: a reserved event name, arguments JSON cannot
            represent, or ``retries`` without a timeout.
        """
        socket = self._manager.socket(namespace)
        return socket.emit(event, args, callback, timeout, volatile, retries)

    def send(
        self,
        data: Any,
        *,
        namespace: str = "/",
        callback: Callable[..., Any] | None = None,
        timeout: float | None = None,
        volatile: bool = False,
        retries: int = 0,
    ) -> Ack | None:
        """Emit a ``"message"`` event; see :meth:`emit`."""
        return self.emit(
            "message",
            data,
            namespace=namespace,
            callback=callback,
            timeout=timeout,
            volatile=volatile,
            retries=retries,
        )

    def call(self, event: str, *args: Any, namespace: str = "/", timeout: float = 60.0) -> Any:
        """Emit an event and wait for its ack.

        :returns: ``None`` when the server acknowledged with no argument, the argument
            when it gave one, else a tuple of them.
        :raises AckTimeout: no ack within ``timeout`` seconds.
        :raises NotConnected: the connection was lost before the ack came (or see
            :meth:`emit`).
        """
        socket = self._manager.socket(namespace)
        ack = socket.emit(event, args, None, timeout, False, 0)
        assert ack is not None
        return ack.get()
