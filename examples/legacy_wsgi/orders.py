"""An existing order-tracking application: plain WSGI, no framework, no Socket.IO.

It stands for the code you would rather not touch: ``app.py`` adds real-time
notifications around it without changing a line here.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qs

ORDERS: list[dict[str, Any]] = []

PAGE = """<!doctype html><title>Orders</title><h1>Orders</h1><ul>{rows}</ul>
<form method="post" action="/orders"><input name="item" placeholder="item" required>
<input name="quantity" type="number" min="1" value="1"><button>Order</button></form>"""


def respond(start_response: Any, status: str, body: str, *headers: tuple[str, str]) -> list[bytes]:
    data = body.encode("utf-8")
    start_response(
        status,
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(data))),
            *headers,
        ],
    )
    return [data]


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
    if method == "GET" and path == "/":
        rows = "".join(
            f"<li>#{o['id']} {o['quantity']} x {html.escape(o['item'])}</li>" for o in ORDERS
        )
        return respond(start_response, "200 OK", PAGE.format(rows=rows))
    if method == "POST" and path == "/orders":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        form = parse_qs(environ["wsgi.input"].read(length).decode("utf-8"))
        item = form.get("item", [""])[0].strip()
        quantity = form.get("quantity", ["1"])[0]
        if not item or not quantity.isdigit() or int(quantity) < 1:
            return respond(start_response, "400 Bad Request", "<p>An item and a quantity, please.")
        ORDERS.append({"id": len(ORDERS) + 1, "item": item, "quantity": int(quantity)})
        return respond(start_response, "303 See Other", "", ("Location", f"/orders/{len(ORDERS)}"))
    return respond(start_response, "404 Not Found", "<p>Not found.")
