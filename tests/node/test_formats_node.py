"""The README's format table on the real node: every input of the table uploaded to the user's S3 store
and anonymized by a FaceBlurJob of its own, all applied at once to the chart as users install it (the
node runs them side by side, so the module costs about its slowest job), each output checked as the
CLI's is (tests/formats_support.check_output: frames, timestamps, size, streams kept, tags)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chart_minio_support import InstalledRelease
from faceblur_testenv.cluster import TestCluster
from faceblur_testenv.s3 import S3Server
from faceblur_testenv.videos import VideoLibrary
from formats_support import FORMATS, check_output, make_input
from kube_support import apply, job_doc
from user_path_support import BUCKET, NAMESPACE, install_chart, wait_succeeded

pytestmark = [pytest.mark.node, pytest.mark.slow]


@pytest.fixture(scope="module")
def release(node_cluster: TestCluster, worker_images: dict[str, str], s3: S3Server) -> Iterator[None]:
    """The chart on the session's node, uninstalled with its namespace when the module is done."""
    installed = InstalledRelease(node_cluster)
    try:
        installed.use(
            "formats", lambda: print(f"helm install to Available: {install_chart(node_cluster, s3):.1f}s")
        )
        yield
    finally:
        installed.remove()


def test_every_format_of_the_table_through_a_faceblurjob(
    node_cluster: TestCluster, s3: S3Server, release: None, videos: VideoLibrary, tmp_path: Path
) -> None:
    store = s3.client()
    inputs = {}
    for fmt in FORMATS:
        source = make_input(videos, fmt, tmp_path)
        store.fput_object(BUCKET, f"formats/{source.name}", str(source))
        inputs[fmt.name] = source
    started = time.monotonic()
    docs = [
        job_doc(
            f"fmt-{fmt.name}",
            {
                "input": {"bucket": BUCKET, "key": f"formats/{inputs[fmt.name].name}"},
                "output": {"bucket": BUCKET, "key": f"formats/out/{fmt.name}.{fmt.output}"},
                "chunking": {"chunks": 2},
                "resources": {"limits": {"cpu": "2"}},  # one worker pod runs both chunks: fewer pods
            },
        )
        for fmt in FORMATS
    ]
    apply(node_cluster, *docs, namespace=NAMESPACE)

    for fmt in FORMATS:
        wait_succeeded(node_cluster, f"fmt-{fmt.name}")
    print(f"{len(FORMATS)} FaceBlurJobs Succeeded in {time.monotonic() - started:.1f}s")
    for fmt in FORMATS:
        output = tmp_path / f"out-{fmt.name}.{fmt.output}"
        store.fget_object(BUCKET, f"formats/out/{fmt.name}.{fmt.output}", str(output))
        check_output(inputs[fmt.name], output)
