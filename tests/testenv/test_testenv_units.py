"""The test environment's pure parts: when pods ran at once (from their API status), the PKI, and what is
said of a process that exited."""

from __future__ import annotations

import sys
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID
from faceblur_testenv import pki
from faceblur_testenv.podtimes import peak_concurrency, run_intervals
from faceblur_testenv.polling import wait_until
from faceblur_testenv.processes import ManagedProcess


def pod(*runs: tuple[str, str], last: tuple[str, str] | None = None) -> dict[str, object]:
    """A pod document whose containers ran (startedAt, finishedAt) second-resolution times."""

    def ended(run: tuple[str, str]) -> dict[str, object]:
        return {
            "terminated": {
                "startedAt": f"2026-01-01T00:00:{run[0]}Z",
                "finishedAt": f"2026-01-01T00:00:{run[1]}Z",
            }
        }

    statuses = [{"state": ended(run), "lastState": ended(last) if last else {}} for run in runs]
    return {"status": {"containerStatuses": statuses}}


def test_run_intervals_reads_terminated_and_last_states_only() -> None:
    running = {
        "status": {"containerStatuses": [{"state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}
    }
    found = run_intervals([pod(("01", "03"), last=("00", "01")), running, {"status": {}}])
    assert [(a.second, b.second) for a, b in found] == [(1, 3), (0, 1)]


def test_peak_concurrency_counts_no_overlap_where_one_ends_as_another_starts() -> None:
    def at(*runs: tuple[str, str]) -> int:
        return peak_concurrency(run_intervals([pod(run) for run in runs]))

    assert peak_concurrency([]) == 0
    assert at(("00", "02"), ("01", "03"), ("02", "04")) == 2  # an end and a start at 2 do not overlap
    assert at(("00", "10"), ("01", "02"), ("03", "05")) == 2
    assert at(("00", "01"), ("01", "02"), ("02", "03")) == 1


def test_client_certificate_names_user_and_groups() -> None:
    ca = pki.CertificateAuthority()
    pair = ca.client(pki.ClientIdentity("alice", ("system:masters",)))
    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.pair.cert_pem))


def test_an_exit_report_names_the_process_its_code_its_log_and_what_was_awaited(tmp_path: Path) -> None:
    script = "import sys; print('cannot bind: address already in use'); sys.exit(3)"
    process = ManagedProcess("etcd", [sys.executable, "-c", script], tmp_path / "etcd.log")
    process.start()
    try:
        wait_until("the process to exit", lambda: not process.running(), timeout_s=30, interval_s=0.05)
    finally:
        process.stop()
    report = process.exit_report()
    assert report == f"etcd exited with code 3; log {tmp_path / 'etcd.log'}:\n" + process.log_tail()
    assert "address already in use" in report
    awaited = process.exit_report(waiting_for="kube-apiserver /readyz")
    assert awaited.startswith("etcd exited with code 3 while waiting for kube-apiserver /readyz; log ")
