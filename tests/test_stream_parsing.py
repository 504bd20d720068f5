"""Bad input from the model's server (issue 8): hypothesis fuzzing of the SSE decoder
(``providers/sse.py``), the provider's stream reader on top of it (``openai_compat._Reader``) and the
streamed tool-call accumulator (``tools/calls.py``).

- any byte stream, cut anywhere into any number of pieces, decodes to the same events as in one
  piece (line endings ``\\n``, ``\\r\\n``, ``\\r`` split between pieces, UTF-8 split mid-character);
- the decoder never raises, whatever the bytes; the reader raises only ``StreamError`` (the
  documented error of a bad stream, a ``ProviderError``), never another exception;
- a tool call streamed in fragments — arguments cut anywhere, several calls interleaved, Ollama's
  reused index 0 — accumulates to the call that was sent, through the real reader and decoder;
- any sequence of fragments whatsoever never makes the accumulator raise.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import campaign
from memchat.domain import Chunk, ToolCall, ToolCallDelta
from memchat.errors import StreamError
from memchat.providers.openai_compat import OpenAICompatible, _Reader
from memchat.providers.sse import Event, SSEDecoder
from memchat.tools.calls import CallAccumulator

EXAMPLES = campaign.size(300, 5000)
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


def decode(pieces: list[bytes]) -> list[Event]:
    decoder = SSEDecoder()
    events: list[Event] = []
    for piece in pieces:
        events += decoder.feed(piece)
    return events + decoder.flush()


# -- the SSE decoder --------------------------------------------------------------------------------------

_line_text = st.text(st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=30)
_eol = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def sse_streams(draw: st.DrawFn) -> bytes:
    """A well-formed stream: events of data lines (some with an event name, an id, comments), each
    line ended by any of the three line endings, events ended by a blank line (the last maybe not)."""
    out: list[str] = []
    for _ in range(draw(st.integers(0, 6))):
        lines: list[str] = []
        if draw(st.booleans()):
            lines.append(": ping")
        if draw(st.booleans()):
            lines.append("event: " + draw(_line_text))
        if draw(st.booleans()):
            lines.append(f"id: {draw(st.integers(0, 10**6))}")
        for _ in range(draw(st.integers(1, 3))):
            lines.append(draw(st.sampled_from(["data: ", "data:"])) + draw(_line_text))
        out.append("".join(line + draw(_eol) for line in lines) + draw(_eol))
    return "".join(out).encode()


@pytest.mark.campaign
def test_any_cut_of_a_stream_decodes_to_the_same_events() -> None:
    tally = {"streams": 0, "events": 0, "pieces": 0}

    @SETTINGS
    @given(stream=sse_streams() | st.binary(max_size=300), cuts=st.lists(st.integers(0, 10_000), max_size=40))
    def same(stream: bytes, cuts: list[int]) -> None:
        whole = decode([stream])
        pieces = split(stream, cuts)
        assert decode(pieces) == whole
        assert decode([bytes([b]) for b in stream]) == whole  # a byte at a time
        tally["streams"] += 1
        tally["events"] += len(whole)
        tally["pieces"] += len(pieces)

    same()
    campaign.record("sse_split", {"examples": EXAMPLES, **tally})


def test_a_usage_of_the_wrong_type_counts_as_zero_instead_of_failing_the_reply() -> None:
    """Regression: ``"usage": {"prompt_tokens": [1]}`` raised TypeError out of the reader (and a
    huge count overflowed SQLite's integer when the message was stored)."""
    body = (
        b'data: {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}], '
        b'"usage": {"prompt_tokens": [1], "completion_tokens": "many", "total_tokens": {}}}\n\n'
        b'data: {"choices": [], "usage": {"prompt_tokens": 1e300, "completion_tokens": "12"}}\n\ndata: [DONE]\n\n'
    )
    chunks, error = read([body])
    assert error is None and "".join(c.text for c in chunks) == "hi"
    assert [(u.prompt_tokens, u.completion_tokens) for u in (c.usage for c in chunks) if u] == [(0, 0), (2**53, 12)]


def test_the_decoder_reads_what_the_spec_says() -> None:
    events = decode([b"data: a\r\ndata:b\r\n\r\n: ping\n\nevent: error\ndata: {}\n\ndata: [DONE]"])
    assert events == [Event("a\nb"), Event("{}", "error"), Event("[DONE]")]
    assert decode([b"data: \xe4\xbd", b"\xa0\xe5\xa5\xbd\n\n"]) == [Event("你好")]  # UTF-8 cut mid-character


# -- the provider's stream reader ------------------------------------------------------------------------------


def reader() -> _Reader:
    provider = OpenAICompatible("http://127.0.0.1:9/v1", api_key="sk-x", model="m", max_retries=0)
    return _Reader(provider, httpx.Response(200, headers={"content-type": "text/event-stream"}))


def read(pieces: list[bytes]) -> tuple[list[Chunk], str | None]:
    """The chunks a reply's bytes give, and the ``StreamError`` that ended it, if one did."""
    r = reader()
    chunks: list[Chunk] = []
    try:
        for piece in pieces:
            chunks += r.feed(piece)
            if r.done:
                break
        else:
            chunks += r.end()
    except StreamError as exc:  # the one error a bad stream may raise
        return chunks, str(exc)
    return chunks, None


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
#: objects shaped like chunks, with every field of the wrong type now and then
_chunkish = st.fixed_dictionaries(
    {},
    optional={
        "choices": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "index": _json,
                    "delta": st.fixed_dictionaries(
                        {},
                        optional={
                            "content": _json,
                            "reasoning_content": _json,
                            "tool_calls": st.lists(
                                st.fixed_dictionaries(
                                    {},
                                    optional={
                                        "index": _json,
                                        "id": _json,
                                        "function": st.fixed_dictionaries(
                                            {}, optional={"name": _json, "arguments": _json}
                                        )
                                        | _json,
                                    },
                                )
                                | _json,
                                max_size=3,
                            )
                            | _json,
                        },
                    )
                    | _json,
                    "finish_reason": _json,
                },
            )
            | _json,
            max_size=2,
        )
        | _json,
        "usage": st.fixed_dictionaries(
            {}, optional={"prompt_tokens": _json, "completion_tokens": _json, "total_tokens": _json}
        )
        | _json,
        "error": _json,
    },
)
_event_data = _chunkish.map(lambda o: json.dumps(o)) | _json.map(json.dumps) | st.just("[DONE]") | _line_text


@st.composite
def chunk_streams(draw: st.DrawFn) -> bytes:
    events = draw(st.lists(_event_data, max_size=6))
    return b"".join(
        (draw(st.sampled_from(["", "event: error\n"])) + f"data: {e}" + draw(_eol) + draw(_eol)).encode()
        for e in events
    )


@pytest.mark.campaign
def test_a_garbled_reply_raises_only_stream_error_and_any_cut_reads_the_same() -> None:
    tally = {"replies": 0, "stream_errors": 0, "chunks": 0}

    @SETTINGS
    @given(stream=chunk_streams() | st.binary(max_size=300), cuts=st.lists(st.integers(0, 10_000), max_size=20))
    def garbled(stream: bytes, cuts: list[int]) -> None:
        whole = read([stream])  # anything but a StreamError escapes and fails the test
        pieces = read(split(stream, cuts))
        assert pieces[1] == whole[1]  # the same error, or none
        if whole[1] is None:
            assert pieces == whole
        else:  # the chunks of the read that hit the bad event are not returned: cut finer, more came first
            assert pieces[0][: len(whole[0])] == whole[0]
        tally["replies"] += 1
        tally["stream_errors"] += whole[1] is not None
        tally["chunks"] += len(whole[0])

    garbled()
    campaign.record("stream_reader_garbage", {"examples": EXAMPLES, **tally})


# -- tool calls ---------------------------------------------------------------------------------------------------

_args = st.text(max_size=40) | _json.map(lambda v: json.dumps(v, ensure_ascii=False))


@st.composite
def streamed_calls(draw: st.DrawFn) -> tuple[list[ToolCall], bytes, bool]:
    """Tool calls and the SSE bytes of a reply streaming them: each call's first fragment carries
    its id and name, its arguments come cut anywhere over later fragments, calls interleaved
    (OpenAI: one index each) or one after another on index 0 (Ollama: a new id starts a call)."""
    n = draw(st.integers(1, 4))
    calls = [ToolCall(f"call_{i}_{draw(st.text(max_size=5))}", draw(_line_text) or "f", draw(_args)) for i in range(n)]
    ollama = draw(st.booleans())
    queues: list[list[dict[str, Any]]] = []
    for i, call in enumerate(calls):
        cuts = sorted(draw(st.lists(st.integers(0, len(call.arguments)), max_size=4)))
        parts = [call.arguments[a:b] for a, b in zip([0, *cuts], [*cuts, len(call.arguments)], strict=True)]
        index = 0 if ollama else i
        first = {
            "index": index,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": parts[0]},
        }
        queues.append([first, *({"index": index, "function": {"arguments": p}} for p in parts[1:])])
    order: list[dict[str, Any]] = []
    if ollama:  # Ollama sends the calls one after the other
        for q in queues:
            order += q
    else:  # OpenAI starts the calls in index order; their later fragments may interleave
        order += [q.pop(0) for q in queues]
        while any(queues):
            q = draw(st.sampled_from([q for q in queues if q]))
            order.append(q.pop(0))
    frames = [{"choices": [{"index": 0, "delta": {"tool_calls": [f]}}]} for f in order]
    frames.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    body = b"".join(b"data: " + json.dumps(f, ensure_ascii=False).encode() + b"\n\n" for f in frames)
    return calls, body + b"data: [DONE]\n\n", ollama


@pytest.mark.campaign
def test_tool_calls_cut_anywhere_accumulate_to_the_calls_sent() -> None:
    tally = {"replies": 0, "calls": 0}

    @SETTINGS
    @given(sent=streamed_calls(), cuts=st.lists(st.integers(0, 10_000), max_size=30))
    def accumulate(sent: tuple[list[ToolCall], bytes, bool], cuts: list[int]) -> None:
        calls, body, _ = sent
        for pieces in ([body], split(body, cuts)):
            chunks, error = read(pieces)
            assert error is None
            acc = CallAccumulator()
            for chunk in chunks:
                acc.feed(chunk.tool_deltas)
            got = acc.calls()
            assert [(c.id, c.name, c.arguments or "{}") for c in calls] == [(c.id, c.name, c.arguments) for c in got]
        tally["replies"] += 1
        tally["calls"] += len(calls)

    accumulate()
    campaign.record("tool_call_split", {"examples": EXAMPLES, **tally})


_delta = st.builds(
    ToolCallDelta,
    index=st.integers(-(2**63), 2**63) | st.integers(0, 3),
    id=st.none() | st.text(max_size=6),
    name=st.none() | st.text(max_size=6),
    arguments=st.text(max_size=20),
)


@pytest.mark.campaign
def test_any_fragments_whatsoever_never_make_the_accumulator_raise() -> None:
    @SETTINGS
    @given(batches=st.lists(st.lists(_delta, max_size=5), max_size=8))
    def anything(batches: list[list[ToolCallDelta]]) -> None:
        acc = CallAccumulator()
        for batch in batches:
            acc.feed(batch)
        calls = acc.calls()
        assert bool(acc) == bool(calls)
        assert all(c.id and isinstance(c.arguments, str) and c.arguments for c in calls)
        # the arguments of every call are the concatenation of the fragments it was given
        assert sum(len(c.arguments) for c in calls if c.arguments != "{}") <= sum(
            len(d.arguments) for b in batches for d in b
        )

    anything()
