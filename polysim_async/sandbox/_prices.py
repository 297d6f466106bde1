"""The price WebSocket, ``/v1/ws/prices?token=`` (API.md §10, the price-feed page).

On open the server sends the ``connected`` greeting (token, cap and close-code
rules are the channel's, see :mod:`._ws`). Client frames, each answered in order
on the socket's queue:

* ``{"action": "subscribe", "markets": [...]}`` or the Polymarket shape
  ``{"type": "subscribe", "conditions": [...]}`` (the action is read from
  ``action``, else ``type``, any case; the list from ``markets``, else
  ``conditions``) adds condition ids and answers ``{"type": "subscribed",
  "markets": [...]}`` with the connection's whole current set; ``unsubscribe``
  removes them and answers the same. Unknown ids are accepted (nothing is
  published for them). A frame with neither list subscribes nothing and is
  acknowledged (as documented for e.g. ``condition_ids``), except one carrying
  ``assets_ids``, which gets the documented ``error`` frame.
* ``{"action": "ping"}`` / ``{"type": "ping"}`` gets ``{"type": "pong", "ts": <ms>}``.
* Invalid JSON, a list that is not a list of strings, an unknown action (or a
  frame that is not an object) each get an ``error`` frame; the socket stays open.
* A connection holds at most :data:`MAX_SUBSCRIPTIONS` condition ids: a subscribe
  that would pass the cap gets an ``error`` frame and changes nothing (inferred:
  the docs state the cap, not the refusal).

Price frames are pushed whenever a subscribed market's mids move (``set_price``,
the hourly random walk, a resolution): the very prices that fill resting orders.
No snapshot is sent on subscribe (inferred: the docs say the server "pushes
price changes"); read ``GET /v1/markets/{id}`` or the book for the current price.
Subscriptions belong to the connection and are gone with it. The WebSocket
faults (drop after N frames, chaos, malformed frames) count every queued frame.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ._fields import WS_ERROR, WS_SUBSCRIBED
from ._json import encode
from ._ws import Channel, Conn

__all__ = ["MAX_SUBSCRIPTIONS", "PriceHub"]

MAX_SUBSCRIPTIONS = 50
_decoder = msgspec.json.Decoder()
_NOT_A_LIST = "'markets' must be a list (accepted aliases: markets, conditions)"
_UNKNOWN = (
    "Unknown action: {action!r}. Expected {{action: subscribe|unsubscribe|ping, markets: [...]}}"
    " (PolySim) or {{type: subscribe|unsubscribe, conditions: [...]}} (PM). Note: 'assets_ids'"
    " (token IDs) is NOT accepted — pass condition IDs only."
)
_ASSETS = {
    "subscribe": (
        "'assets_ids' carries token IDs and is not a valid subscribe field — PolySim WS"
        " broadcasts by condition_id. Pass 'markets' (PolySim) or 'conditions' (PM) with the"
        " condition_id list."
    ),
    "unsubscribe": (
        "'assets_ids' carries token IDs and is not a valid unsubscribe field — pass 'markets'"
        " (PolySim) or 'conditions' (PM) with the condition_id list."
    ),
}


class PriceHub(Channel):
    """The price channel: subscriptions per socket and the fan-out of price frames."""

    path = "/v1/ws/prices"
    malformed = '{"type": "price", "market_id": '

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.subscribers: dict[str, set[Conn]] = {}

    def watched(self, market_id: str) -> bool:
        """Whether any socket is subscribed to ``market_id``."""
        return bool(self.subscribers.get(market_id))

    def publish(self, market_id: str, text: str) -> None:
        """Queue a frame on every socket subscribed to ``market_id``."""
        for conn in self.subscribers.get(market_id, ()):
            conn.queue.put_nowait(text)

    def forget(self, conn: Conn) -> None:
        """Drop a closed socket's subscriptions."""
        for market_id in conn.markets:
            subs = self.subscribers.get(market_id)
            if subs is not None:
                subs.discard(conn)
                if not subs:
                    del self.subscribers[market_id]
        conn.markets.clear()

    @staticmethod
    def _error(conn: Conn, message: str) -> None:
        conn.queue.put_nowait(encode(WS_ERROR.make(type="error", message=message)).decode())

    async def on_text(self, conn: Conn, data: str) -> None:
        """Answer one client frame (see the module docstring)."""
        try:
            frame = _decoder.decode(data)
        except (msgspec.DecodeError, RecursionError):
            self._error(conn, "Invalid JSON")
            return
        if not isinstance(frame, dict):
            self._error(conn, _UNKNOWN.format(action=None))
            return
        raw = frame.get("action", frame.get("type"))
        action = raw.strip().lower() if isinstance(raw, str) else raw
        if action == "ping":
            conn.queue.put_nowait(self.pong())
            return
        if action not in ("subscribe", "unsubscribe"):
            self._error(conn, _UNKNOWN.format(action=raw))
            return
        key = next((k for k in ("markets", "conditions") if k in frame), None)
        if key is not None:
            ids = frame[key]
        elif "assets_ids" in frame:
            self._error(conn, _ASSETS[action])
            return
        else:
            ids = []  # another key (e.g. condition_ids): nothing subscribed, as documented
        if not isinstance(ids, list):
            self._error(conn, _NOT_A_LIST)
            return
        if not all(isinstance(i, str) for i in ids):
            self._error(conn, "'markets' must be a list of condition_id strings")
            return
        if action == "subscribe":
            added = [i for i in dict.fromkeys(ids) if i not in conn.markets]
            if len(conn.markets) + len(added) > MAX_SUBSCRIPTIONS:
                self._error(
                    conn,
                    f"at most {MAX_SUBSCRIPTIONS} condition IDs per connection: this one holds "
                    f"{len(conn.markets)}; open another connection for more",
                )
                return
            for market_id in added:
                conn.markets[market_id] = None
                self.subscribers.setdefault(market_id, set()).add(conn)
        else:
            for market_id in ids:
                if conn.markets.pop(market_id, 0) is None:
                    subs = self.subscribers[market_id]
                    subs.discard(conn)
                    if not subs:
                        del self.subscribers[market_id]
        ack = WS_SUBSCRIBED.make(type="subscribed", markets=list(conn.markets))
        conn.queue.put_nowait(encode(ack).decode())
