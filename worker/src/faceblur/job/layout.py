"""Where a job's objects live in the object store: the one definition of the layout.

Everything under a job prefix is an intermediate except the final output, which is
written to its own key. The worker, the compose step and the operator (progress,
cleanup) all derive keys from here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

CLAIM = "job.json"  # which job owns the prefix, and the input it was made from: written first by split
MANIFEST = "manifest.json"
RESULT = "result.json"  # written by compose once the output is published
PUBLISHING = "publishing.json"  # the output compose publishes, written before the upload (job.outputs)
AUDIO = "audio.mka"  # every audio stream of the input, stream-copied by split
CHUNKS = "chunks"  # source chunks cut by split
PROCESSED = "processed"  # anonymized chunks written by process
DETECTIONS = "detections"  # per-chunk detections JSON
RESULTS = "results"  # per-chunk summary (frames, faces): small, listed for progress
DEBUG = "debug"  # per-chunk debug videos, debug video and contact sheet
LOCKS = "locks"  # claims of indexes by workers sharing one local folder
FRAMES = "frames"  # optional PNG/JPEG export of frames for people to inspect
VERIFICATION = "verification"  # per-chunk verification reports, merged by compose


# Everything a job writes under its prefix: what its cleanup may delete, and nothing else.
OWN_FOLDERS = (CHUNKS, PROCESSED, DETECTIONS, RESULTS, DEBUG, LOCKS, FRAMES, VERIFICATION)
OWN_FILES = (MANIFEST, RESULT, AUDIO, PUBLISHING, CLAIM)


def _index(i: int) -> str:
    return f"{i:06d}"


@dataclass(frozen=True)
class JobLayout:
    """Keys of one job's objects, relative to the store root (bucket or folder)."""

    prefix: str

    def key(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p.strip("/"))

    @property
    def claim(self) -> str:
        return self.key(CLAIM)

    @property
    def manifest(self) -> str:
        return self.key(MANIFEST)

    @property
    def result(self) -> str:
        return self.key(RESULT)

    @property
    def publishing(self) -> str:
        return self.key(PUBLISHING)

    @property
    def audio(self) -> str:
        return self.key(AUDIO)

    def chunk(self, index: int, ext: str = "mkv") -> str:
        return self.key(CHUNKS, f"{_index(index)}.{ext}")

    def processed(self, index: int) -> str:
        return self.key(PROCESSED, f"{_index(index)}.mkv")

    def detections(self, index: int) -> str:
        return self.key(DETECTIONS, f"{_index(index)}.json")

    def chunk_result(self, index: int) -> str:
        return self.key(RESULTS, f"{_index(index)}.json")

    def debug_chunk(self, index: int) -> str:
        return self.key(DEBUG, f"{_index(index)}.mkv")

    @property
    def debug_video(self) -> str:
        return self.key(DEBUG, "debug.mp4")

    @property
    def contact_sheet(self) -> str:
        return self.key(DEBUG, "contact-sheet.png")

    def chunk_verification(self, index: int) -> str:
        return self.key(VERIFICATION, f"{_index(index)}.json")

    @property
    def verification_report(self) -> str:
        """The merged report, kept with the intermediates too (where a refused output's report stays)."""
        return self.key(VERIFICATION, "report.json")

    def lock(self, index: int) -> str:
        return self.key(LOCKS, f"{_index(index)}.lock")

    def frame_image(self, frame: int, ext: str) -> str:
        return self.key(FRAMES, f"{frame:08d}.{ext}")

    @property
    def results_dir(self) -> str:
        return self.key(RESULTS) + "/"
