"""gunicorn settings for geventsio on one machine.

gunicorn -c gunicorn.conf.py app:app
"""

import os

# The gevent worker, plus a graceful Socket.IO shutdown: on SIGTERM, a reload or
# max_requests, clients are told at once and reconnect, instead of being cut off after
# graceful_timeout. (GeventWebSocketWorker is the same for gevent-websocket users.)
worker_class = "geventsio.serving.gunicorn.GeventWorker"

# ONE worker, because this example's server keeps its rooms in memory. Several workers
# share their sessions by themselves (each forwards the requests of the others' sessions
# to their owner; docs/deployment.md, "Several workers"), but a broadcast reaches the
# clients of every worker only through the Redis adapter:
# Server(adapter=geventsio.redis_adapter(URL)) -- then raise this.
workers = 1
worker_connections = 10_000  # HTTP connections at once (a WebSocket leaves the pool)

bind = os.environ.get("BIND", "127.0.0.1:8000")
graceful_timeout = 10  # the worker needs about a second; this is a safety net
timeout = 30  # a worker whose event loop is blocked that long is restarted
keepalive = 5

# Log geventsio's lines (refused requests, unknown sessions, shutdown) with gunicorn's.
logconfig_dict = {
    "loggers": {
        "geventsio": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
    },
}

# Report any handler that blocks the event loop for more than 100 ms, with its stack.
raw_env = ["GEVENTSIO_BLOCK_THRESHOLD=0.1"]
