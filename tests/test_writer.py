"""``JetStreamWriter``: acknowledged writes with nats-py's errors, against a real server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import nats.errors
import pytest
from nats.aio.client import Client
from nats.js.api import KeyValueConfig, StreamConfig
from nats.js.errors import BadRequestError, KeyWrongLastSequenceError

from agent.runtime.writer import BucketWrites, JetStreamWriter

pytestmark = pytest.mark.nats


@pytest.fixture
async def writer(nc: Client) -> AsyncIterator[JetStreamWriter]:
    w = JetStreamWriter(nc)
    await w.start()
    yield w
    await w.close()


async def test_a_write_is_acknowledged_once_per_msg_id(nc: Client, writer: JetStreamWriter) -> None:
    name = f"W{uuid.uuid4().hex[:8]}"
    await nc.jetstream().add_stream(StreamConfig(name=name, subjects=[f"{name}.>"]))
    headers = {"Nats-Msg-Id": "m-1"}
    acks = await asyncio.gather(
        *(writer.publish(f"{name}.a", b"x", {"Nats-Msg-Id": f"n-{i}"}) for i in range(50))
    )
    assert sorted(a.seq for a in acks) == list(range(1, 51))
    assert {a.stream for a in acks} == {name}
    first = await writer.publish(f"{name}.a", b"y", headers)
    again = await writer.publish(f"{name}.a", b"y", headers)
    assert (first.duplicate, again.duplicate, again.seq) == (False, True, first.seq)
    assert (await nc.jetstream().stream_info(name)).state.messages == 51


async def test_a_kv_create_of_a_key_that_holds_a_value_fails_as_nats_py_says(
    nc: Client, writer: JetStreamWriter
) -> None:
    bucket = f"W{uuid.uuid4().hex[:8]}"
    kv = await nc.jetstream().create_key_value(KeyValueConfig(bucket=bucket))
    writes = BucketWrites(writer, bucket)
    first = await writes.create("k", b"first")
    with pytest.raises(KeyWrongLastSequenceError):
        await writes.create("k", b"second")
    assert (await kv.get("k")).value == b"first"
    assert await writes.put("k", b"third") == first + 1  # a put takes any key
    assert (await kv.get("k")).value == b"third"


async def test_an_error_answer_is_nats_pys_exception(nc: Client, writer: JetStreamWriter) -> None:
    name = f"W{uuid.uuid4().hex[:8]}"
    await nc.jetstream().add_stream(StreamConfig(name=name, subjects=[f"{name}.>"]))
    with pytest.raises(BadRequestError) as caught:  # expecting another stream: refused
        await writer.publish(f"{name}.a", b"x", {"Nats-Expected-Stream": "ELSEWHERE"})
    assert caught.value.err_code == 10060


async def test_no_stream_on_the_subject_is_no_responders(writer: JetStreamWriter) -> None:
    with pytest.raises(nats.errors.NoRespondersError):
        await writer.publish(f"nobody.{uuid.uuid4().hex}", b"x")


async def test_an_ack_that_never_comes_times_out(nc: Client, writer: JetStreamWriter) -> None:
    subject = f"silent.{uuid.uuid4().hex}"
    sub = await nc.subscribe(subject)  # a responder that takes the message and says nothing
    try:
        with pytest.raises(nats.errors.TimeoutError):
            await writer.publish(subject, b"x", timeout=0.3)
        assert writer.pending == 0  # nothing left behind
    finally:
        await sub.unsubscribe()


async def test_close_fails_what_still_waits(nc: Client) -> None:
    writer = JetStreamWriter(nc)
    await writer.start()
    subject = f"silent.{uuid.uuid4().hex}"
    sub = await nc.subscribe(subject)
    try:
        waiting = asyncio.create_task(writer.publish(subject, b"x", timeout=30))
        await asyncio.sleep(0.1)
        await writer.close()
        with pytest.raises(nats.errors.ConnectionClosedError):
            await waiting
    finally:
        await sub.unsubscribe()
