"""Properties of detect(): it always answers, and never changes its mind as bytes arrive."""

from __future__ import annotations

import operator
import ssl
import string
from collections.abc import Callable

import h2.config
import h2.connection
from hypothesis import given
from hypothesis import strategies as st

from weft_proxy.protocols.detect import MAX_DETECT_BYTES, Detected, NeedMore, Protocol, detect

OPAQUE = Detected(Protocol.OPAQUE)
FirstFlight = tuple[bytes, Detected]

# Explicit alphabets (not st.from_regex) spare Hypothesis a slow first-run Unicode scan.
TOKEN_CHARS = "!#$%&'*+-.^_`|~" + string.digits + string.ascii_letters
VISIBLE_ASCII = "".join(map(chr, range(0x21, 0x7F)))

# Labels start with a letter, so that no name reads as an IP address (which gets no SNI).
dns_labels = st.builds(
    operator.add,
    st.sampled_from(string.ascii_lowercase),
    st.text(string.ascii_lowercase + string.digits + "-", max_size=12),
)
host_names = st.lists(dns_labels, min_size=1, max_size=5).map(".".join)
alpn_lists = st.lists(
    st.sampled_from(["h2", "http/1.1", "grpc-exp", "transport.l5d.io/v1", "acme-tls/1"]),
    unique=True,
    max_size=4,
)
# Anything the client may send after what detection looks at: headers, body, frames.
tails = st.binary(max_size=64)


def tls_first_flights(make_client_hello: Callable[..., bytes]) -> st.SearchStrategy[FirstFlight]:
    @st.composite
    def build(draw: st.DrawFn) -> FirstFlight:
        sni, alpn = draw(st.none() | host_names), draw(alpn_lists)
        max_version = draw(st.sampled_from([None, ssl.TLSVersion.TLSv1_2]))
        hello = make_client_hello(sni, alpn, max_version)
        return hello, Detected(Protocol.TLS, sni=sni, alpn=tuple(alpn))

    return build()


@st.composite
def http1_first_flights(draw: st.DrawFn) -> FirstFlight:
    method = draw(
        st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS"])
        | st.text(TOKEN_CHARS, min_size=1, max_size=12)
    )
    target = draw(st.just("*") | st.text(VISIBLE_ASCII, max_size=40).map("/".__add__))
    version = draw(st.sampled_from(["1.0", "1.1"]))
    line = f"{method} {target} HTTP/{version}\r\n".encode()
    expected = Detected(Protocol.HTTP1, method=method, target=target, version=version)
    return line + draw(tails), expected


@st.composite
def h2_first_flights(draw: st.DrawFn) -> FirstFlight:
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    connection.initiate_connection()
    return connection.data_to_send() + draw(tails), Detected(Protocol.HTTP2)


def valid_first_flights(make_client_hello: Callable[..., bytes]) -> st.SearchStrategy[FirstFlight]:
    return tls_first_flights(make_client_hello) | http1_first_flights() | h2_first_flights()


def first_bytes(make_client_hello: Callable[..., bytes]) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, and valid first flights cut short or with one byte changed."""

    @st.composite
    def damaged(draw: st.DrawFn) -> bytes:
        whole = bytearray(draw(valid_first_flights(make_client_hello))[0])
        whole[draw(st.integers(0, len(whole) - 1))] = draw(st.integers(0, 255))
        return bytes(whole[: draw(st.integers(0, len(whole)))])

    return st.binary(max_size=256) | damaged()


@given(data=st.data())
def test_detect_always_answers_and_final_always_decides(
    client_hello: Callable[..., bytes], data: st.DataObject
) -> None:
    first = data.draw(first_bytes(client_hello))
    outcome = detect(first)
    if isinstance(outcome, NeedMore):
        assert len(first) < outcome.at_least <= MAX_DETECT_BYTES
    else:
        assert isinstance(outcome, Detected)
    assert isinstance(detect(first, final=True), Detected)


@given(data=st.data(), more=st.binary(max_size=64))
def test_a_decision_never_changes_as_more_bytes_arrive(
    client_hello: Callable[..., bytes], data: st.DataObject, more: bytes
) -> None:
    first = data.draw(first_bytes(client_hello))
    outcome = detect(first)
    if isinstance(outcome, Detected):
        assert detect(first + more) == outcome
        assert detect(first + more, final=True) == outcome


@given(data=st.data())
def test_a_prefix_of_a_valid_flight_never_gives_a_wrong_protocol(
    client_hello: Callable[..., bytes], data: st.DataObject
) -> None:
    whole, expected = data.draw(valid_first_flights(client_hello))
    assert detect(whole) == expected
    prefix = whole[: data.draw(st.integers(0, len(whole)))]
    outcome = detect(prefix)
    assert outcome == expected or isinstance(outcome, NeedMore)
    assert detect(prefix, final=True) in (expected, OPAQUE)
    if isinstance(outcome, NeedMore):  # the hint is honest: no answer before it
        assert isinstance(detect(whole[: outcome.at_least - 1]), NeedMore)
