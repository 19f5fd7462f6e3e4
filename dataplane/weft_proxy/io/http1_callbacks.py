"""An HTTP/1 exchange served in Protocol callbacks from start to end. The request goes
out on an idle pooled connection. Its answer is judged and relayed as the upstream's
bytes arrive. No task wakes and no coroutine is made: per request, that is the
cost of two task wake-ups and a chain of coroutines (docs/benchmarks.md).

The steps are the ones the coroutine path takes: `Exchange.took_head`, then
`relay_head` and `pour`, then `release`. Some things callbacks cannot do, such as wait
for a client's full write buffer to drain. Then the request is
handed to the client connection's serving task mid-way (`ClientStream.hand_off`), and
the task goes on with the same steps (`Exchange.relay_rest`).
"""

from __future__ import annotations

import logging

from weft_proxy.io.http1_errors import ClientGone
from weft_proxy.io.http1_exchange import Exchange
from weft_proxy.io.http1_server import ClientStream
from weft_proxy.protocols.http1 import Framing, RequestHead

log = logging.getLogger(__name__)

# A body that has arrived whole and is no larger than this goes with its head in one
# write, which cannot fill an empty write buffer (64 KiB before it pauses). A larger
# one, or one still arriving, is the serving task's to send.
MAX_BODY_IN_CALLBACKS = 16 * 1024

# Python 3.11's EnumType has a __getattr__, which makes each `Framing.X` a slow lookup.
_NO_BODY, _LENGTH = Framing.NONE, Framing.LENGTH


def whole_body(head: RequestHead, stream: ClientStream) -> bytes | None:
    """The request's body, if callbacks may send it: b"" for none, else all of it, taken
    from the stream. None (nothing taken) if it may not: it is large, chunked, or still
    arriving."""
    framing = head.framing
    if framing is _NO_BODY or (framing is _LENGTH and not head.length):
        stream.took_end()
        return b""
    if framing is not _LENGTH:
        return None
    length = head.length or 0
    if length > MAX_BODY_IN_CALLBACKS:
        return None
    return stream.buffered_body()


class CallbackExchange:
    """Drives one exchange in callbacks. A subclass says what the answer means
    (`answered`: relay it, refuse, or hand the request off) and counts the end
    (`settle`)."""

    __slots__ = ("exchange", "head", "stream")

    def __init__(self, stream: ClientStream, head: RequestHead, exchange: Exchange) -> None:
        self.stream = stream
        self.head = head
        self.exchange = exchange
        exchange.connection.listener = self._await_head

    def answered(self, answer: Exchange | None, error: Exception | None) -> None:
        """The final head has come (`answer`), or no answer will (`error`, with the
        exchange closed)."""
        raise NotImplementedError

    def settle(self, complete: bool | None) -> None:
        """The relayed response is over: whole, cut short by the upstream (False), or
        given up because the client went away (None)."""
        raise NotImplementedError

    def abandoned(self) -> None:
        """The client went away before the answer came (its exchange is closed)."""
        self.stream.served(False)

    def _await_head(self) -> None:
        exchange = self.exchange
        answer: Exchange | None = exchange
        failure: Exception | None = None
        try:
            if not exchange.took_head(self.stream):
                exchange.connection.resume()
                return
        except ClientGone:  # a 1xx could not reach it
            exchange.connection.listener = None
            exchange.close()
            self.abandoned()
            return
        except (ConnectionError, OSError) as error:
            exchange.close()
            answer, failure = None, error
        exchange.connection.listener = None
        try:
            self.answered(answer, failure)
        except Exception:  # a fault: the connections end, as a failed task's would
            log.exception("serving a request in callbacks")
            exchange.close()
            self.abandoned()

    def relay(self) -> None:
        """Relay the answer, which is final and the client's."""
        exchange = self.exchange
        # (Never a tunnel: a request asking for a switch, or CONNECT, is not taken.)
        exchange.relay_head(self.stream.draining)
        self._pour()

    def _pour(self) -> None:
        exchange, stream = self.exchange, self.stream
        connection = exchange.connection
        try:
            complete = exchange.pour(stream)
        except Exception as error:  # the client went away (ClientGone), or a fault
            if not isinstance(error, ConnectionError | OSError):
                log.exception("relaying a response in callbacks")
            connection.listener = None
            exchange.close()
            self.settle(None)
            stream.served(False)
            return
        if complete is None:  # more is to come
            if stream.must_drain:
                connection.listener = None
                stream.hand_off(self._rest_by_task)
            else:
                connection.listener = self._pour
                connection.resume()  # (a TLS read may pass more than pauses it)
            return
        connection.listener = None
        exchange.release(complete)
        self.settle(complete)
        keep_alive = complete and exchange.keep_client and self.head.keep_alive
        if complete and stream.must_drain:
            stream.hand_off(lambda: stream.drained(keep_alive))
        else:
            stream.served(keep_alive)

    async def _rest_by_task(self) -> bool:
        outcome: bool | None = None
        try:
            outcome = await self.exchange.relay_rest(self.stream)
        finally:
            self.settle(outcome)
        return outcome and self.exchange.keep_client and self.head.keep_alive
