"""Which job owns a prefix, so that two jobs never mix their objects and a cleanup deletes only its own.

Split checks the prefix before any work and writes the claim (`job.json`) once the input proved
readable, before any other object of the job: the owner (a FaceBlurJob's
uid; None for a local run) and the input it reads, with a fingerprint of that input (size and ETag,
or size and modification time). A split that finds another owner's claim, or one made from another
input or another version of it, refuses before any work (`PrefixInUseError`) and writes nothing;
the same job finding its own claim (a retry, a resumed local run) reuses what is there. A cleanup
deletes the job's own keys (`layout.OWN_FOLDERS`, `OWN_FILES`) only where the claim is its own, so
a user's objects under a prefix they chose, or another job's, stay.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from faceblur.errors import PrefixInUseError
from faceblur.job.layout import JobLayout
from faceblur.storage import ObjectStore


class JobClaim(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = 1
    owner: str | None  # the FaceBlurJob's uid; None: a local run
    input: str  # where the job reads its input (URL or path)
    fingerprint: str | None  # size and ETag or modification time; None where it cannot be read cheaply

    def conflict(self, other: JobClaim) -> str | None:
        """Why `other` may not use the prefix this claim holds; None when it is the same job."""
        if self.owner != other.owner:
            return f"it holds the objects of another job (uid {self.owner or 'of a local run'})"
        if self.input != other.input:
            return f"it holds a job made from another input ({self.input})"
        if None not in (self.fingerprint, other.fingerprint) and self.fingerprint != other.fingerprint:
            return f"it holds a job made from an earlier version of {self.input}"
        return None


def read_claim(store: ObjectStore, layout: JobLayout) -> JobClaim | None:
    if not store.exists(layout.claim):
        return None
    return JobClaim.model_validate_json(store.get_bytes(layout.claim))


def check_prefix(store: ObjectStore, layout: JobLayout, claim: JobClaim) -> bool:
    """Whether `claim`'s job already holds the prefix; refused, naming what holds it and what to do,
    where another job or another input does. Reads only."""
    held = read_claim(store, layout)
    if held is None:
        return False
    why = held.conflict(claim)
    if why is not None:
        raise PrefixInUseError(
            f"{store.url}/{layout.prefix}: {why}; give this job a prefix of its own"
            " (spec.intermediates.prefix, or the default), or delete that job and its objects first"
        )
    return True


def write_claim(store: ObjectStore, layout: JobLayout, claim: JobClaim) -> None:
    store.put_bytes(layout.claim, claim.model_dump_json(indent=2).encode(), "application/json")
