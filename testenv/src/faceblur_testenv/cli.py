"""`faceblur-testenv`: start the test environment by hand, build its binaries, or run the pod runner alone."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import typer

from faceblur_testenv.binaries import BUILD_SCRIPT
from faceblur_testenv.nodes import NodeSpec, default_nodes, parse_node_list

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
    nodes: str = typer.Option(
        "",
        envvar="FACEBLUR_TESTENV_NODES",
        help="Nodes as name:gpus[:cpu[:memory]],... (default: 2 x 1 GPU).",
    ),
    s3: bool = typer.Option(True, help="Also start the S3 server."),
    real_node: bool = typer.Option(
        False, help="One real node (containerd, kubelet, kube-proxy; root) instead of the pod runner."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Start the control plane, the pod runner and the S3 server in the foreground; Ctrl-C stops all."""
    from faceblur_testenv.cluster import TestCluster

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    folder = (workdir or Path(tempfile.mkdtemp(prefix="faceblur-testenv-"))).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    cluster = TestCluster(
        folder / "cluster", nodes=parse_node_list(nodes) if nodes else None, real_node=real_node
    )
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
            typer.echo(f"nodes:      {', '.join(f'{n.name} ({n.gpus} GPU)' for n in cluster.nodes)}")
            typer.echo(f"pod logs:   {cluster.runner_root / 'pods'}")
        if server is not None:
            typer.echo(
                f"S3:         {server.url}  access key {server.access_key}  secret key {server.secret_key}"
            )
            typer.echo("  export " + " ".join(f"{k}={v}" for k, v in server.env().items()))
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


@app.command()
def podrunner(
    kubeconfig: Path = typer.Option(..., envvar="KUBECONFIG", help="Kubeconfig with a client certificate."),
    root: Path = typer.Option(..., help="Folder for pod logs, termination logs and runs.jsonl."),
    node: list[str] = typer.Option([], help="A node as name:gpus[:cpu[:memory]] (repeatable)."),
    node_json: list[str] = typer.Option([], hidden=True, help="A NodeSpec as JSON (used by TestCluster)."),
    path_prefix: str = typer.Option(
        str(Path(sys.executable).parent),
        help="Put first on PATH for pod processes (default: this venv's bin).",
    ),
    entrypoints: str = typer.Option(
        "",
        envvar="FACEBLUR_TESTENV_ENTRYPOINTS",
        help='JSON {"image/repo": ["cmd", ...]} for command-less pods.',
    ),
    pass_env: str = typer.Option(
        "", envvar="FACEBLUR_TESTENV_PASS_ENV", help="Comma-separated host variables to hand to every pod."
    ),
) -> None:
    """Run the pod runner in the foreground (registers the nodes, runs their pods as local processes)."""
    from faceblur_testenv import podrunner as runner
    from faceblur_testenv.kubeapi import Credentials, KubeApi
    from faceblur_testenv.podspec import DEFAULT_ENTRYPOINTS

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(threadName)s: %(message)s")
    specs: list[NodeSpec] = [NodeSpec.from_json(text) for text in node_json]
    for text in node:
        specs.extend(parse_node_list(text))
    images = {**DEFAULT_ENTRYPOINTS, **{k: tuple(v) for k, v in json.loads(entrypoints or "{}").items()}}
    passed = (*runner.PASSED_ENV, *filter(None, (n.strip() for n in pass_env.split(","))))
    runner.serve(
        KubeApi(Credentials.from_kubeconfig(kubeconfig)),
        root.resolve(),
        specs or list(default_nodes()),
        path_prefix,
        images,
        passed,
    )


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()


if __name__ == "__main__":
    main()
