"""The control plane's layout without starting it: the components' flags agree with the layout's files
and the settings' ports and with each other, every file they name is one the launcher writes, the
kubeconfigs lead to the layout's CA and the server."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from faceblur_testenv.controlplane import (
    CA,
    FIRST_COMPONENTS,
    LATER_COMPONENTS,
    SERVICE_ACCOUNT,
    SERVING,
    ControlPlaneLayout,
    ControlPlaneSettings,
    apiserver_flags,
    component_environment,
    component_flags,
    controller_manager_flags,
    etcd_flags,
    scheduler_flags,
)
from faceblur_testenv.kubeapi import Credentials
from faceblur_testenv.launcher import write_credentials

BRIDGE_IP = "10.213.7.1"


def settings(real_node: bool = True) -> ControlPlaneSettings:
    """Ports no component shares, so a flag carrying the wrong one shows."""
    return ControlPlaneSettings(BRIDGE_IP, 42001, 42002, 42003, 42004, 42005, real_node=real_node)


def values(flags: list[str]) -> dict[str, str]:
    """--name=value flags by name (each name appears once)."""
    pairs = [flag.removeprefix("--").split("=", 1) for flag in flags if "=" in flag]
    found = dict(pairs)
    assert len(found) == len(pairs), flags
    return found


@pytest.fixture
def layout(tmp_path: Path) -> ControlPlaneLayout:
    return ControlPlaneLayout(tmp_path / "cluster")


def test_each_component_listens_on_its_own_port_and_etcd_is_where_the_api_server_looks(
    layout: ControlPlaneLayout,
) -> None:
    s = settings()
    etcd, apiserver = values(etcd_flags(layout, s)), values(apiserver_flags(layout, s))
    assert etcd["listen-client-urls"] == etcd["advertise-client-urls"] == apiserver["etcd-servers"]
    assert etcd["listen-client-urls"].endswith(f":{s.etcd_port}")
    assert etcd["listen-peer-urls"].endswith(f":{s.etcd_peer_port}")
    assert etcd["data-dir"] == str(layout.etcd_data)
    assert (apiserver["bind-address"], apiserver["secure-port"]) == (BRIDGE_IP, str(s.apiserver_port))
    assert s.server == f"https://{BRIDGE_IP}:{s.apiserver_port}"
    secure_ports = {
        name: int(values(flags)["secure-port"])
        for name, flags in component_flags(layout, s).items()
        if name != "kube-apiserver" and "secure-port" in values(flags)
    }
    assert secure_ports == s.health_ports  # what the launcher polls is what they serve


def test_the_api_server_and_controllers_share_the_layouts_ca_and_service_account_key(
    layout: ControlPlaneLayout,
) -> None:
    s = settings()
    apiserver = values(apiserver_flags(layout, s))
    kcm = values(controller_manager_flags(layout, s))
    assert apiserver["client-ca-file"] == kcm["root-ca-file"] == kcm["cluster-signing-cert-file"]
    assert apiserver["client-ca-file"] == str(layout.cert(CA))
    assert kcm["cluster-signing-key-file"] == str(layout.key(CA))
    assert (apiserver["tls-cert-file"], apiserver["tls-private-key-file"]) == (
        str(layout.cert(SERVING)),
        str(layout.key(SERVING)),
    )
    # Tokens signed by the controller manager verify with the API server's key.
    assert kcm["service-account-private-key-file"] == apiserver["service-account-signing-key-file"]
    assert apiserver["service-account-key-file"] == str(layout.cert(SERVICE_ACCOUNT))
    for flags, role in ((kcm, "controller-manager"), (values(scheduler_flags(layout, s)), "scheduler")):
        kubeconfig = str(layout.kubeconfig(role))
        assert flags["kubeconfig"] == flags["authentication-kubeconfig"] == kubeconfig
        assert flags["authorization-kubeconfig"] == kubeconfig


def test_only_a_real_node_gets_the_kubelet_client_and_the_service_endpoint(
    layout: ControlPlaneLayout,
) -> None:
    with_node, alone = apiserver_flags(layout, settings()), apiserver_flags(layout, settings(real_node=False))
    assert "--endpoint-reconciler-type=none" in alone
    assert "--endpoint-reconciler-type=none" not in with_node
    kubelet_client = values(with_node)["kubelet-client-certificate"]
    assert "kubelet-client-certificate" not in values(alone)
    assert kubelet_client in {str(layout.cert(role)) for role in settings().identities}
    assert set(settings(real_node=False).identities) < set(settings().identities)
    assert component_environment("kube-apiserver", settings(real_node=False)) == {}
    assert component_environment("kube-apiserver", settings()) != {}


def test_components_start_in_two_groups_that_cover_every_component(layout: ControlPlaneLayout) -> None:
    assert [*FIRST_COMPONENTS, *LATER_COMPONENTS] == list(component_flags(layout, settings()))


@pytest.mark.parametrize("real_node", [True, False])
def test_every_file_a_flag_names_is_written_and_every_kubeconfig_leads_to_the_ca_and_server(
    layout: ControlPlaneLayout, real_node: bool
) -> None:
    s = settings(real_node)
    write_credentials(layout, s)
    named = [
        Path(value)
        for flags in component_flags(layout, s).values()
        for name, value in values(flags).items()
        if value.startswith(str(layout.workdir)) and name not in {"data-dir", "cert-dir"}
    ]
    assert named
    assert [path for path in named if not path.is_file()] == []

    ca_cert = x509.load_pem_x509_certificate(layout.cert(CA).read_bytes())
    serving = x509.load_pem_x509_certificate(layout.cert(SERVING).read_bytes())
    serving.verify_directly_issued_by(ca_cert)
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert BRIDGE_IP in {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    for role, identity in s.identities.items():
        credentials = Credentials.from_kubeconfig(layout.kubeconfig(role))
        assert (credentials.server, credentials.ca_file) == (s.server, layout.cert(CA))
        assert credentials.key_file.is_file()
        client = x509.load_pem_x509_certificate(credentials.cert_file.read_bytes())
        client.verify_directly_issued_by(ca_cert)
        assert client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == identity.user
