"""Deterministic names, labels and annotations of the objects the operator creates.

A restarted operator must find the Jobs it created instead of creating new ones, so every name
is a function of the FaceBlurJob's name, the stage and the retry attempt, never random.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

DOMAIN = "faceblur.dev"
MANAGED_BY = "faceblur-operator"

LABEL_NAME = "app.kubernetes.io/name"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_JOB_UID = f"{DOMAIN}/job-uid"  # the owning FaceBlurJob's uid: names can be reused, uids cannot
LABEL_STAGE = f"{DOMAIN}/stage"
LABEL_ATTEMPT = f"{DOMAIN}/attempt"
LABEL_KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"

ANNOTATION_OWNER = f"{DOMAIN}/faceblurjob"  # the owning FaceBlurJob's name (labels cap at 63 characters)
ANNOTATION_RETRY = f"{DOMAIN}/retry"  # set to any new value on a Failed job to retry it
ANNOTATION_INDEX = "batch.kubernetes.io/job-completion-index"
# On the worker Job and its pods: the job's chunks and how many each index runs (pods.index_chunks)
ANNOTATION_CHUNKS = f"{DOMAIN}/chunks"
ANNOTATION_CHUNKS_PER_INDEX = f"{DOMAIN}/chunks-per-index"

MANAGED_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY}"

# Indexed Job pods get the hostname <job>-<index>, which must stay within 63 characters.
JOB_NAME_MAX = 52
LABEL_VALUE_MAX = 63


class Stage(StrEnum):
    SPLIT = "split"
    WORK = "work"
    COMPOSE = "compose"
    CLEANUP = "cleanup"


def _digest(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def fit(name: str, limit: int) -> str:
    """`name` if short enough, else a prefix plus a digest of the whole name: still unique, still stable."""
    if len(name) <= limit:
        return name
    digest = _digest(name)
    return f"{name[: limit - len(digest) - 1].rstrip('-.')}-{digest}"


def job_name(owner: str, stage: Stage, attempt: int = 0) -> str:
    """<owner>-<stage> for the first attempt, <owner>-<stage>-r<N> for retry N."""
    suffix = stage.value if attempt == 0 else f"{stage.value}-r{attempt}"
    return f"{fit(owner, JOB_NAME_MAX - len(suffix) - 1)}-{suffix}"


def deletion_cleanup_name(owner: str, uid: str) -> str:
    """The unowned Job that removes intermediates after the FaceBlurJob is deleted."""
    suffix = f"cleanup-{uid[:8]}"
    return f"{fit(owner, JOB_NAME_MAX - len(suffix) - 1)}-{suffix}"


def label_value(text: str) -> str:
    return fit(text, LABEL_VALUE_MAX).strip("-_.") or "x"


def child_labels(owner: str, uid: str, stage: Stage, attempt: int) -> dict[str, str]:
    return {
        LABEL_NAME: "faceblur",
        LABEL_INSTANCE: label_value(owner),
        LABEL_COMPONENT: stage.value,
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_JOB_UID: uid,
        LABEL_STAGE: stage.value,
        LABEL_ATTEMPT: str(attempt),
    }


def children_selector(uid: str) -> str:
    """Label selector of every Job and pod of one FaceBlurJob."""
    return f"{MANAGED_SELECTOR},{LABEL_JOB_UID}={uid}"
