"""Turn a pod's container spec into a local process launch: argv, environment, working folder.

Pure functions; Secrets and ConfigMaps are read through a lookup function the caller supplies.
Semantics follow the kubelet where a local process can follow them: `$(VAR)` expansion in env values,
command and args; env `value`/`valueFrom` (fieldRef, resourceFieldRef, secretKeyRef, configMapKeyRef);
`envFrom`; later entries override earlier ones. The image is not pulled: a container without `command`
gets the entry point registered for its image name (see `image_entrypoint`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from faceblur_testenv.kubeapi import JSON

# (kind "secrets" | "configmaps", namespace, name) -> its data decoded to text, or None when absent.
Lookup = Callable[[str, str, str], Mapping[str, str] | None]

DEFAULT_ENTRYPOINTS: Mapping[str, tuple[str, ...]] = {
    "faceblur/worker": ("faceblur",),
    "faceblur/worker-gpu": ("faceblur",),
}
SUPPORTED_VOLUMES = ("emptyDir", "secret", "configMap", "downwardAPI", "projected", "hostPath")


class ContainerConfigError(Exception):
    """The container cannot be started as specified (the kubelet's CreateContainerConfigError)."""


@dataclass(frozen=True)
class ContainerLaunch:
    """Everything needed to start one container as a local process."""

    name: str
    image: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: Path
    log_path: Path
    termination_log: Path
    fallback_to_logs: bool


_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(template: str, env: Mapping[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: known names are replaced, `$$` escapes `$`, unknown ones stay."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _VAR.sub(replace, template)


_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_value(pod: JSON, path: str) -> str:
    """The value a `fieldRef.fieldPath` selects from the pod (metadata and the node/IP fields)."""
    meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    if match := _SUBSCRIPT.match(path):
        return str(meta.get(match.group(1), {}).get(match.group(2), ""))
    simple: dict[str, Any] = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": status.get("hostIP", "127.0.0.1"),
        "status.hostIPs": status.get("hostIP", "127.0.0.1"),
        "status.podIP": status.get("podIP", "127.0.0.1"),
        "status.podIPs": status.get("podIP", "127.0.0.1"),
    }
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1], {})
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    if path not in simple:
        raise ContainerConfigError(f"unsupported fieldRef {path!r}")
    return str(simple[path] or "")


_SUFFIXES: dict[str, Decimal | int] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$")


def parse_quantity(text: str) -> Decimal:
    """A Kubernetes quantity ("500m", "2Gi", "1e3") as a number."""
    match = _QUANTITY.match(text.strip())
    if not match:
        raise ContainerConfigError(f"bad quantity {text!r}")
    number, suffix = Decimal(match.group(1)), match.group(2) or ""
    if suffix[:1] in ("e", "E"):
        return number * Decimal(10) ** int(suffix[1:])
    return number * Decimal(_SUFFIXES[suffix])


def resource_value(container: JSON, resource: str, divisor: str, allocatable: Mapping[str, str]) -> str:
    """`resourceFieldRef`: limit or request, rounded up in units of divisor; an unset limit is the node's."""
    kind, _, name = resource.partition(".")
    resources = container.get("resources", {})
    value = resources.get(kind, {}).get(name)
    if value is None and kind == "limits":
        value = allocatable.get(name)
    if value is None:
        value = "0"
    unit = parse_quantity(divisor or "1")
    return str(math.ceil(parse_quantity(value) / unit))


def _ref_value(lookup: Lookup, kind: str, namespace: str, ref: JSON) -> str | None:
    data = lookup(kind, namespace, ref["name"])
    singular = "secret" if kind == "secrets" else "configmap"
    if data is None:
        if ref.get("optional"):
            return None
        raise ContainerConfigError(f'{singular} "{ref["name"]}" not found')
    if ref["key"] not in data:
        if ref.get("optional"):
            return None
        raise ContainerConfigError(f"couldn't find key {ref['key']} in {singular} {namespace}/{ref['name']}")
    return data[ref["key"]]


def container_env(
    pod: JSON,
    container: JSON,
    lookup: Lookup,
    base: Mapping[str, str],
    allocatable: Mapping[str, str],
) -> dict[str, str]:
    """The process environment: base first, then envFrom, then env (each may use earlier values)."""
    namespace = pod["metadata"]["namespace"]
    env = dict(base)
    for source in container.get("envFrom", []):
        prefix = source.get("prefix", "")
        for kind, key in (("configmaps", "configMapRef"), ("secrets", "secretRef")):
            if key not in source:
                continue
            data = lookup(kind, namespace, source[key]["name"])
            if data is None:
                if source[key].get("optional"):
                    continue
                raise ContainerConfigError(f'{kind[:-1]} "{source[key]["name"]}" not found')
            env.update({prefix + k: v for k, v in data.items()})
    for var in container.get("env", []):
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(var.get("value", ""), env)
            continue
        source = var["valueFrom"]
        value: str | None
        if "fieldRef" in source:
            value = field_value(pod, source["fieldRef"]["fieldPath"])
        elif "resourceFieldRef" in source:
            ref = source["resourceFieldRef"]
            value = resource_value(container, ref["resource"], ref.get("divisor", "1"), allocatable)
        elif "secretKeyRef" in source:
            value = _ref_value(lookup, "secrets", namespace, source["secretKeyRef"])
        elif "configMapKeyRef" in source:
            value = _ref_value(lookup, "configmaps", namespace, source["configMapKeyRef"])
        else:
            raise ContainerConfigError(f"unsupported valueFrom for env {name}: {sorted(source)}")
        if value is not None:
            env[name] = value
    return env


def image_repository(image: str) -> str:
    """`registry.example:5000/faceblur/worker:1.0@sha256:...` -> `faceblur/worker`."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    if ":" in name[slash + 1 :]:
        name = name[: name.rfind(":")]
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        name = rest
    return name.removeprefix("library/")


def image_entrypoint(image: str, entrypoints: Mapping[str, Sequence[str]]) -> tuple[str, ...] | None:
    """The entry point registered for the image's repository (exact, or a trailing path match)."""
    repo = image_repository(image)
    for key, argv in entrypoints.items():
        if repo == key or repo.endswith("/" + key):
            return tuple(argv)
    return None


def command_line(
    container: JSON, env: Mapping[str, str], entrypoints: Mapping[str, Sequence[str]]
) -> list[str]:
    """command + args as the runtime would run them, with `$(VAR)` expanded."""
    command = container.get("command") or []
    args = container.get("args") or []
    if not command:
        entry = image_entrypoint(container.get("image", ""), entrypoints)
        if entry is None:
            raise ContainerConfigError(
                f"container {container['name']} has no command and the pod runner knows no entry point for "
                f"image {container.get('image')!r} (it runs no images; give a command)"
            )
        command = list(entry)
    return [expand(part, env) for part in [*command, *args]]


def mounted_folders(pod: JSON, container: JSON, volume_root: Path) -> dict[str, Path]:
    """mountPath -> local folder for each mount of a supported volume (others are left out)."""
    volumes = {v["name"]: v for v in pod.get("spec", {}).get("volumes", [])}
    mounts: dict[str, Path] = {}
    for mount in container.get("volumeMounts", []):
        volume = volumes.get(mount["name"], {})
        if "hostPath" in volume:
            folder = Path(volume["hostPath"]["path"])
        elif any(kind in volume for kind in SUPPORTED_VOLUMES):
            folder = volume_root / mount["name"]
        else:
            continue
        if mount.get("subPath"):
            folder = folder / mount["subPath"]
        mounts[mount["mountPath"].rstrip("/") or "/"] = folder
    return mounts


def map_paths(value: str, mounts: Mapping[str, Path]) -> str:
    """Rewrite a path under a mountPath (whole value, or after `--flag=`) to the local folder."""
    head, sep, tail = value.partition("=") if value.startswith("-") else ("", "", value)
    for mount_path in sorted(mounts, key=len, reverse=True):
        if tail == mount_path or tail.startswith(mount_path.rstrip("/") + "/"):
            return head + sep + str(mounts[mount_path]) + tail[len(mount_path) :]
    return value


# (audience or None, expiration seconds) -> a service-account token for the pod (TokenRequest).
TokenIssuer = Callable[[str | None, int], str]


def _key_files(source: JSON, data: Mapping[str, str] | None, what: str) -> dict[str, str]:
    """Files of a Secret/ConfigMap source: every key, or the listed items."""
    if data is None:
        if source.get("optional"):
            return {}
        raise ContainerConfigError(f"{what} not found")
    items = source.get("items")
    if not items:
        return dict(data)
    missing = [item["key"] for item in items if item["key"] not in data]
    if missing and not source.get("optional"):
        raise ContainerConfigError(f"{what} has no key {missing[0]}")
    return {item["path"]: data[item["key"]] for item in items if item["key"] in data}


def _downward_files(pod: JSON, source: JSON) -> dict[str, str]:
    return {
        item["path"]: field_value(pod, item["fieldRef"]["fieldPath"])
        for item in source.get("items", [])
        if "fieldRef" in item
    }


def volume_files(volume: JSON, pod: JSON, lookup: Lookup, issue_token: TokenIssuer) -> dict[str, str] | None:
    """Files of a volume (relative path -> text): {} for emptyDir, None for kinds not materialized here.

    Secret, ConfigMap, downwardAPI (fieldRef items) and projected volumes (those three plus
    serviceAccountToken, as in the `kube-api-access-*` volume the API server adds) are written out.
    """
    namespace = pod["metadata"]["namespace"]
    if "emptyDir" in volume:
        return {}
    if "secret" in volume:
        name = volume["secret"]["secretName"]
        return _key_files(volume["secret"], lookup("secrets", namespace, name), f'secret "{name}"')
    if "configMap" in volume:
        name = volume["configMap"]["name"]
        return _key_files(volume["configMap"], lookup("configmaps", namespace, name), f'configmap "{name}"')
    if "downwardAPI" in volume:
        return _downward_files(pod, volume["downwardAPI"])
    if "projected" not in volume:
        return None
    files: dict[str, str] = {}
    for source in volume["projected"].get("sources", []):
        if "serviceAccountToken" in source:
            token = source["serviceAccountToken"]
            files[token["path"]] = issue_token(
                token.get("audience"), int(token.get("expirationSeconds", 3607))
            )
        elif "secret" in source:
            name = source["secret"]["name"]
            files.update(_key_files(source["secret"], lookup("secrets", namespace, name), f'secret "{name}"'))
        elif "configMap" in source:
            name = source["configMap"]["name"]
            files.update(
                _key_files(source["configMap"], lookup("configmaps", namespace, name), f'configmap "{name}"')
            )
        elif "downwardAPI" in source:
            files.update(_downward_files(pod, source["downwardAPI"]))
    return files


def token_volume(pod: JSON) -> str | None:
    """The name of the pod's volume that projects a service-account token, if any."""
    for volume in pod.get("spec", {}).get("volumes", []):
        if any("serviceAccountToken" in s for s in volume.get("projected", {}).get("sources", [])):
            return str(volume["name"])
    return None


def plan_container(
    pod: JSON,
    container: JSON,
    lookup: Lookup,
    base_env: Mapping[str, str],
    allocatable: Mapping[str, str],
    entrypoints: Mapping[str, Sequence[str]],
    pod_dir: Path,
) -> ContainerLaunch:
    """The whole launch of one container; paths under its mounts and its termination-message path are
    rewritten to folders and files under pod_dir."""
    name = container["name"]
    termination_log = pod_dir / f"{name}.termination-log"
    mounts = mounted_folders(pod, container, pod_dir / "volumes")
    mounts[container.get("terminationMessagePath") or "/dev/termination-log"] = termination_log
    base = {**base_env, "FACEBLUR_TERMINATION_LOG": str(termination_log)}
    # Only values the pod spec gives are container paths: the runner's own (PATH, TMPDIR, KUBECONFIG)
    # are host paths and stay as they are, even when they lie under a mount path such as /tmp.
    env = {
        k: v if base.get(k) == v else map_paths(v, mounts)
        for k, v in container_env(pod, container, lookup, base, allocatable).items()
    }
    argv = tuple(map_paths(part, mounts) for part in command_line(container, env, entrypoints))
    working_dir = container.get("workingDir")
    return ContainerLaunch(
        name=name,
        image=container.get("image", ""),
        argv=argv,
        env=env,
        cwd=Path(map_paths(working_dir, mounts)) if working_dir else pod_dir / "work",
        log_path=pod_dir / f"{name}.log",
        termination_log=termination_log,
        fallback_to_logs=container.get("terminationMessagePolicy") == "FallbackToLogsOnError",
    )
