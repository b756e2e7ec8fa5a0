"""Where a plan's figures come from: measured, prior, calibrated or assumed.

docs/learning.md ("Provenance") defines the four words. A figure derived from others is
no better than its weakest input, so it takes that input's word: a gain combined from a
calibrated and a prior gain is a prior; weeks scheduled from the playbook's effort for an
assumed team size are assumed. Every section of a report carries the same record
(``Provenance``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from protocols.reports import Provenance
from protocols.types import Source

STRENGTH: Mapping[Source, int] = {"assumed": 0, "prior": 1, "calibrated": 2, "measured": 3}
"""Weakest first: what a derived figure inherits from its inputs."""


def measured(basis: str) -> Provenance:
    return Provenance(source="measured", basis=basis)


def playbook(basis: str) -> Provenance:
    return Provenance(source="prior", basis=basis)


def assumed(basis: str) -> Provenance:
    return Provenance(source="assumed", basis=basis)


def weakest(inputs: Iterable[Provenance], basis: str) -> Provenance:
    """The source of a figure derived from ``inputs``: the weakest of theirs.

    A calibrated result counts the verifications of all its inputs. No input at all is a
    figure that follows from what was measured alone (e.g. nothing to gain: 0).
    """
    given = list(inputs)
    if not given:
        return measured(basis)
    source = min((p.source for p in given), key=STRENGTH.__getitem__)
    verified = sum(p.verifications for p in given) if source == "calibrated" else 0
    return Provenance(source=source, basis=basis, verifications=verified)
