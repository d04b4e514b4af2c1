#!/usr/bin/env bash
# Install everything this project needs on a fresh Debian machine, idempotently:
#   Debian packages (ffmpeg), a Python virtual environment in .venv with the pinned tools,
#   the four project packages in editable mode, and (with --cluster) the control-plane
#   binaries for the test cluster (cached outside the repository, see scripts/build-k8s.sh) and the
#   Debian packages of its real node (containerd 1.6, runc, CNI plugins, iptables, busybox-static, gcc
#   for the pause image; the harness runs its own containerd, never the system service).
set -euo pipefail
cd "$(dirname "$0")/.."

want_cluster=0
for a in "$@"; do case "$a" in --cluster) want_cluster=1 ;; *) echo "unknown option: $a" >&2; exit 2 ;; esac; done

need_apt=()
command -v ffmpeg >/dev/null 2>&1 || need_apt+=(ffmpeg)
if [ "$want_cluster" -eq 1 ]; then
  for p in containerd runc containernetworking-plugins iptables conntrack busybox-static gcc libc6-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_apt+=("$p")
  done
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need_apt[*]}" >&2
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $($PY --version)" >&2
  "$PY" -m venv .venv
fi
stamp=.venv/.faceblur-installed
inputs=$(cat requirements-dev.txt contract/pyproject.toml worker/pyproject.toml testenv/pyproject.toml operator/pyproject.toml 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$inputs" ]; then
  echo "installing Python packages into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  # The worker and the contract were installed as faceblur and faceblur-contract before they were
  # renamed: drop those installs and their metadata beside the sources.
  rm -rf worker/src/faceblur.egg-info contract/src/faceblur_contract.egg-info
  for old in faceblur faceblur-contract; do
    if .venv/bin/python -m pip show -q "$old" >/dev/null 2>&1; then .venv/bin/python -m pip uninstall -y -q "$old"; fi
  done
  pkgs=(-e contract -e worker -e testenv)  # the contract first: worker and operator depend on it
  [ -f operator/pyproject.toml ] && pkgs+=(-e operator)
  .venv/bin/python -m pip install -q -r requirements-dev.txt "${pkgs[@]}"
  echo "$inputs" > "$stamp"
fi

if [ "$want_cluster" -eq 1 ]; then
  bash scripts/build-k8s.sh >/dev/null
fi
