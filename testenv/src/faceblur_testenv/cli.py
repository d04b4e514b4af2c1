"""`faceblur-testenv`: start the test environment by hand, or build its binaries."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import typer

from faceblur_testenv.binaries import BUILD_SCRIPT

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def _wait_for_signal() -> None:
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()


def _start_s3(workdir: Path, bind_ip: str) -> Any:
    """The S3 server of faceblur_testenv.s3, or None when that module is not there."""
    try:
        from faceblur_testenv.s3 import S3Server
    except ImportError:
        return None
    server = S3Server(workdir / "s3", bind_ip=bind_ip)
    server.start()
    return server


@app.command()
def up(
    workdir: Path | None = typer.Option(None, help="Where everything lives (default: a new temp folder)."),
    s3: bool = typer.Option(True, help="Also start the S3 server."),
    real_node: bool = typer.Option(
        True,
        "--real-node/--no-node",
        help="One real node (containerd, kubelet, kube-proxy, device plugin; needs root), or none at all.",
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Start the control plane, the real node with the worker image and the S3 server in the foreground,
    print how to install the chart and run an example on it; Ctrl-C stops all."""
    from faceblur_testenv import devcluster
    from faceblur_testenv.cluster import TestCluster

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    folder = (workdir or Path(tempfile.mkdtemp(prefix="faceblur-testenv-"))).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    # The worker image (built when missing or stale) on the node, as the user-path tests have it.
    images = devcluster.worker_archives() if real_node else []
    cluster = TestCluster(folder / "cluster", real_node=real_node, node_images=images)
    cluster.start()
    server = None
    try:
        server = _start_s3(folder, cluster.bind_ip) if s3 else None
        typer.echo(f"workdir:    {folder}")
        typer.echo(f"kubeconfig: {cluster.kubeconfig}")
        typer.echo(f"  export KUBECONFIG={cluster.kubeconfig} PATH={cluster.bin_dir}:$PATH")
        if cluster.node is not None:
            typer.echo(f"node:       {cluster.node.name} (real; pod network {cluster.node.net})")
        else:
            typer.echo("node:       none (control plane only: pods stay Pending)")
        if server is not None:
            typer.echo(
                f"S3:         {server.url}  access key {server.access_key}  secret key {server.secret_key}"
            )
            typer.echo("  export " + " ".join(f"{k}={v}" for k, v in server.env().items()))
        if server is not None and cluster.node is not None and cluster.bin_dir is not None:
            devcluster.stock(server, folder / "videos")
            typer.echo(devcluster.guide(cluster.kubeconfig, cluster.bin_dir, server))
        typer.echo("Ctrl-C stops everything.")
        _wait_for_signal()
    finally:
        typer.echo("stopping ...")
        if server is not None:
            server.stop()
        cluster.stop()


@app.command()
def binaries() -> None:
    """Build or locate kube-apiserver, kube-controller-manager, kube-scheduler, etcd, kubectl and helm."""
    raise typer.Exit(subprocess.run(["bash", str(BUILD_SCRIPT)], check=False).returncode)


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()


if __name__ == "__main__":
    main()
