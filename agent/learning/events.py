"""The learning event log: what the runtime appends to JetStream and rebuilds the state from.

Each event carries everything its fold needs (the prediction it matched, or None), so a
rebuild never looks anything up: replaying the log through ``agent.learning.state.fold``
gives the state the live path built. ``event_id`` doubles as the publish's
``Nats-Msg-Id``, so a retried append is stored once.
"""

from __future__ import annotations

import msgspec

from agent.learning.records import PredictionRecord
from protocols.messages import ImplementationUpdate, VerificationResult


class VerificationEvent(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="verification"
):
    """Athena measured a recommendation; ``prediction`` is None when we never made it."""

    event_id: str
    """``v:`` + the verification id."""
    verification: VerificationResult
    prediction: PredictionRecord | None = None


class FeedbackEvent(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="feedback"):
    """Hephaestus reported on a plan item; approach and metric come from the matched prediction."""

    event_id: str
    """``u:`` + the update id."""
    update: ImplementationUpdate
    approach_key: str | None = None
    """Playbook key of the predicted approach; None when the recommendation is unknown."""
    metric: str | None = None


LearningEvent = VerificationEvent | FeedbackEvent

_ENCODER = msgspec.json.Encoder()
_DECODER: msgspec.json.Decoder[LearningEvent] = msgspec.json.Decoder(LearningEvent)


def verification_event(
    verification: VerificationResult, prediction: PredictionRecord | None
) -> VerificationEvent:
    """The event for ``verification``, with its id derived so a duplicate maps to the same id."""
    return VerificationEvent(
        event_id=f"v:{verification.verification_id}",
        verification=verification,
        prediction=prediction,
    )


def feedback_event(
    update: ImplementationUpdate, prediction: PredictionRecord | None
) -> FeedbackEvent:
    """The event for ``update``; an approach outside the playbook has no key (None)."""
    return FeedbackEvent(
        event_id=f"u:{update.update_id}",
        update=update,
        approach_key=(prediction.approach_key or None) if prediction is not None else None,
        metric=prediction.metric if prediction is not None else None,
    )


def encode_event(event: LearningEvent) -> bytes:
    return _ENCODER.encode(event)


def decode_event(data: bytes) -> LearningEvent:
    """One logged event; raises ``msgspec.ValidationError`` / ``DecodeError`` on bad bytes."""
    return _DECODER.decode(data)
