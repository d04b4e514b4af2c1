"""The output plan on the real node: a camera's PCM .mov through a FaceBlurJob keeps its PCM in the
default output (.blurred.mov), and an .mp4 output gets AAC, each said in status.outputPlan."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import pytest
from cluster_support import BUCKET, apply, wait_phase
from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.s3 import S3Server
from faceblur_testenv.videos import VideoLibrary, VideoSpec
from kube_support import job_doc

pytestmark = pytest.mark.cluster


def codecs(path: Path) -> list[str]:
    with av.open(str(path)) as container:
        return [s.codec_context.name for s in container.streams if s.type in ("video", "audio")]


def test_a_pcm_mov_keeps_its_pcm_by_default_and_gets_aac_in_an_mp4(
    test_cluster: TestCluster, s3_server: S3Server, namespace: str, videos: VideoLibrary, tmp_path: Path
) -> None:
    camera = tmp_path / "camera.mov"
    source = videos.get(VideoSpec(frames=40, gop=10)).path
    command = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), "-map", "0", "-c:v", "copy"]
    subprocess.run([*command, "-c:a", "pcm_s16le", str(camera)], check=True, capture_output=True)
    s3_server.client().fput_object(BUCKET, "samples/camera.mov", str(camera))
    default = job_doc("pcm-default", {"input": {"bucket": BUCKET, "key": "samples/camera.mov"}})
    mp4 = job_doc(
        "pcm-mp4",
        {
            "input": {"bucket": BUCKET, "key": "samples/camera.mov"},
            "output": {"bucket": BUCKET, "key": "out/camera.mp4"},
        },
    )
    apply(test_cluster, namespace, default, mp4)

    kept = wait_phase(test_cluster, namespace, "pcm-default", "Succeeded")["status"]
    converted = wait_phase(test_cluster, namespace, "pcm-mp4", "Succeeded")["status"]

    assert kept["output"] == f"s3://{BUCKET}/samples/camera.blurred.mov"
    assert kept["outputPlan"] == "MOV; audio #1 pcm_s16le copied"
    assert converted["outputPlan"].startswith("MP4; audio #1 pcm_s16le -> aac 128 kb/s (MP4 players")
    for key, expected in (("samples/camera.blurred.mov", "pcm_s16le"), ("out/camera.mp4", "aac")):
        local = tmp_path / key.replace("/", "_")
        s3_server.client().fget_object(BUCKET, key, str(local))
        assert codecs(local) == ["h264", expected]
