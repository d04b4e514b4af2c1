"""What `faceblur-testenv up` adds for someone trying the operator by hand on the real node: the worker
image in the node's containerd (built when missing or stale), the examples' bucket with a sample input in
the S3 server, and the README's install steps filled in with this cluster's values. The user-path tests
install the chart with the same settings, so what is printed here is what they run."""

from __future__ import annotations

import shlex
from pathlib import Path

from faceblur_testenv.images import REPO_ROOT, ensure_images
from faceblur_testenv.s3 import S3Server
from faceblur_testenv.videos import VideoLibrary, VideoSpec

NAMESPACE = "faceblur-system"  # the README's; the examples name none, so they go where -n says
SECRET = "faceblur-s3"
BUCKET = "faceblur"  # what the examples name
INPUT_KEY = "samples/people.mp4"
SAMPLE = VideoSpec(frames=40, gop=10)  # astronaut, 320x240, 1.6 s, a keyframe every 10 frames
# The node has 2 CPUs; the chart's default request of 1 CPU per job pod would run one pod at a time.
SMALL_REQUESTS = {"cpu": "500m", "memory": "512Mi"}
CHART = REPO_ROOT / "charts" / "faceblur"


def chart_settings(s3_url: str) -> list[str]:
    """`helm install --set` values: the README's two (the store and its Secret), then what this node
    needs: the locally built images' names and tag, no pulls (no registry), small requests."""
    return [
        f"defaults.storage.endpoint={s3_url}",
        f"defaults.storage.credentialsSecret.name={SECRET}",
        "image.repository=faceblur/worker",  # the images scripts/build-images.sh builds and the node has
        "gpuImage.repository=faceblur/worker-gpu",
        "image.tag=test",
        "defaults.images.pullPolicy=Never",
        f"defaults.resources.requests.cpu={SMALL_REQUESTS['cpu']}",
        f"defaults.resources.requests.memory={SMALL_REQUESTS['memory']}",
    ]


def worker_archives() -> list[Path]:
    """The worker image's archive for the node to import (scripts/build-images.sh builds it if stale)."""
    return [image.archive for image in ensure_images(["worker"])]


def stock(server: S3Server, videos: Path) -> None:
    """The examples' bucket and their input, a short video with a real face."""
    server.make_bucket(BUCKET)
    server.client().fput_object(BUCKET, INPUT_KEY, str(VideoLibrary(videos).get(SAMPLE).path))


def guide(kubeconfig: Path, bin_dir: Path, server: S3Server) -> str:
    """The README's steps for this cluster: environment, namespace and Secret, helm install, an example."""
    q = shlex.quote
    sets = " \\\n    ".join(f"--set {q(value)}" for value in chart_settings(server.url))
    output = "blurred/people-cpu.mp4"
    args = ", ".join(f'"{a}"' for a in (server.endpoint, server.access_key, server.secret_key))
    fetch = f'fget_object("{BUCKET}", "{output}", "people-cpu.mp4")'
    download = f"import minio; minio.Minio({args}, secure=False).{fetch}"
    return "\n".join(
        [
            "Try the operator as the README tells it, in another shell:",
            f"  export KUBECONFIG={q(str(kubeconfig))} PATH={q(str(bin_dir))}:$PATH",
            f"  kubectl create namespace {NAMESPACE}",
            f"  kubectl -n {NAMESPACE} create secret generic {SECRET}"
            f" --from-literal=accessKey={q(server.access_key)}"
            f" --from-literal=secretKey={q(server.secret_key)}",
            f"  helm install faceblur {q(str(CHART))} -n {NAMESPACE} \\\n    {sets}",
            f"  kubectl -n {NAMESPACE} apply -f {q(str(REPO_ROOT / 'manifests' / 'examples' / 'cpu.yaml'))}"
            f"   # its input s3://{BUCKET}/{INPUT_KEY} is uploaded",
            f"  kubectl -n {NAMESPACE} get fbj -w",
            f"  {q(str(REPO_ROOT / '.venv' / 'bin' / 'python'))} -c {q(download)}   # the output",
        ]
    )
