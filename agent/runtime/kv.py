"""JetStream KV buckets of the agent: bound when present, created when missing, never changed."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError
from nats.js.kv import KeyValue

from agent.config import Settings


def bucket_name(settings: Settings, role: str) -> str:
    return f"{settings.streams_token}_{role}"


async def open_bucket(
    js: JetStreamContext,
    settings: Settings,
    role: str,
    *,
    description: str,
    ttl_s: float | None = None,
    history: int = 1,
) -> KeyValue:
    """The bucket ``<PREFIX>_<ROLE>`` with the configured replicas."""
    name = bucket_name(settings, role)
    try:
        return await js.key_value(name)
    except BucketNotFoundError:
        return await js.create_key_value(
            KeyValueConfig(
                bucket=name,
                description=description,
                history=history,
                ttl=ttl_s,
                storage=StorageType.FILE,
                replicas=settings.stream_replicas,
            )
        )
