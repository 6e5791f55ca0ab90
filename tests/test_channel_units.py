"""The switch channel's pure parts (no root): the datapath check, refusals and
the degraded state, the listener's bind errors, the PKI directory's checks,
and the agent's option checks."""
import os
import ssl
import subprocess
import sys

import pytest

from sg_ofctl import errors
from sg_ofctl.dataplane import channel, pki

SECRET = channel.new_secret()
TLS = channel.ChannelSecurity("tls")


def test_a_connection_must_report_the_secret_and_the_bridges_datapath():
    guard = channel.ChannelGuard(SECRET, TLS)
    assert guard.check(0x1234, SECRET.encode()) is None        # os-ken gives bytes
    assert guard.check(0x1234, SECRET) is None
    assert "secret" in guard.check(0x1234, b"Open vSwitch")
    assert "secret" in guard.check(0x1234, "\u00e9t\u00e9".encode())
    guard.expected_dpid = 0x1234
    assert "is not the bridge's" in guard.check(0x9999, SECRET)
    assert guard.check(0x1234, SECRET) is None


def test_a_refusal_is_counted_logged_and_degrades(caplog):
    guard = channel.ChannelGuard(SECRET, TLS)
    assert guard.degraded_reason() is None
    guard.refuse("127.0.0.1:4000", 0xab, "no datapath description within 5 s")
    reason = guard.degraded_reason()
    assert "127.0.0.1:4000" in reason and "no datapath description" in reason
    status = guard.status()
    assert status["refused_total"] == 1
    assert status["refused"][0]["datapath_id"] == "00000000000000ab"
    assert "refused a switch connection from 127.0.0.1:4000 claiming datapath" in caplog.text


def test_a_listener_that_cannot_bind_says_which_address():
    first = channel.Listener("127.0.0.1", 0, channel.ChannelSecurity("plain"))
    port = first.sock.getsockname()[1]
    try:
        with pytest.raises(errors.UserError, match=f"listen=127.0.0.1:{port}: cannot listen"):
            channel.Listener("127.0.0.1", port, channel.ChannelSecurity("plain"))
    finally:
        first.sock.close()


def test_the_pki_is_made_once_and_verifies(tmp_path):
    files = pki.ensure(tmp_path / "pki")
    mtime = files.cert("controller").stat().st_mtime_ns
    assert pki.ensure(tmp_path / "pki").cert("controller").stat().st_mtime_ns == mtime
    assert (tmp_path / "pki").stat().st_mode & 0o777 == 0o700
    assert files.key("switch").stat().st_mode & 0o077 == 0
    ctx = ssl.create_default_context(cafile=str(files.ca_cert))
    ctx.check_hostname = False
    ctx.load_cert_chain(files.cert("switch"), files.key("switch"))
    out = subprocess.run(["openssl", "verify", "-CAfile", str(files.ca_cert),
                          str(files.cert("switch")), str(files.cert("controller"))],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr


def test_a_pki_directory_open_to_others_is_refused(tmp_path):
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o755)
    os.chmod(open_dir, 0o755)
    with pytest.raises(errors.UserError, match="switch_pki_dir=.*closed to group and others"):
        pki.ensure(open_dir)
    assert not list(open_dir.iterdir())


@pytest.mark.parametrize("option,value", [("--audit-interval", "-1"),
                                          ("--switch-timeout", "0"),
                                          ("--audit-interval", "1e9")])
def test_bad_agent_timings_are_refused_naming_the_option(tmp_path, option, value):
    proc = subprocess.run([sys.executable, "-m", "sg_ofctl.cli", "agent", "--bridge", "br-x",
                           "--run-dir", str(tmp_path), "--switch-pki-dir", str(tmp_path / "pki"),
                           option, value], capture_output=True, text=True, check=False,
                          timeout=60)
    assert proc.returncode != 0
    assert f"{option[2:]}={float(value)!r}" in proc.stderr
    assert not (tmp_path / "pki").exists()
