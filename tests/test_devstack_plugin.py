"""devstack/plugin.sh phase by phase, without a cloud: against DevStack's real
shell functions when DEVSTACK_DIR names a DevStack checkout, otherwise against
tests/devstack/standin.sh; bashate with DevStack's own settings."""
import configparser
import os
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent
PHASES = ROOT / "tests" / "devstack" / "run_phases.sh"
VENV_NEUTRON = ROOT / ".venv-neutron"


def run(tmp_path, *phases, **env):
    conf = tmp_path / "etc" / "neutron" / "plugins" / "ml2" / "ml2_conf.ini"
    conf.parent.mkdir(parents=True, exist_ok=True)
    if not conf.exists():
        # What DevStack's configure_neutron left there.
        conf.write_text("[securitygroup]\nfirewall_driver = openvswitch\n")
    calls = tmp_path / "calls"
    full_env = {**os.environ, "WORK": str(tmp_path), "CALLS": str(calls),
                "NEUTRON_CORE_PLUGIN_CONF": str(conf), "DEVSTACK_VENV": str(VENV_NEUTRON),
                **env}
    proc = subprocess.run(["bash", str(PHASES), *phases], env=full_env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ini = configparser.RawConfigParser(strict=False, allow_no_value=True)
    ini.read(conf)
    return ini, calls.read_text().splitlines() if calls.exists() else []


def test_stack_installs_and_configures_the_driver(tmp_path):
    ini, calls = run(tmp_path, "stack:pre-install", "stack:install", "stack:post-config",
                     "stack:extra")
    assert ini.get("securitygroup", "firewall_driver") == "sg_ofctl"
    assert ini.get("sg_ofctl", "first_table") == "100"
    assert ini.get("sg_ofctl", "audit_period") == "300"
    assert ini.get("sg_ofctl", "log_level") == "INFO"
    assert f"setup_develop {tmp_path}/opt/sg-ofctl neutron" in calls
    assert "plugin_requires sg-ofctl neutron" in calls


def test_local_conf_variables_reach_the_config(tmp_path):
    ini, _ = run(tmp_path, "stack:post-config", SG_OFCTL_FIRST_TABLE="150",
                 SG_OFCTL_AUDIT_PERIOD="0", SG_OFCTL_LOG_LEVEL="DEBUG")
    assert [ini.get("sg_ofctl", k) for k in ("first_table", "audit_period", "log_level")] == \
        ["150", "0", "DEBUG"]


def test_unstack_then_clean_leave_nothing_and_twice_is_the_same(tmp_path):
    run(tmp_path, "stack:install", "stack:post-config")
    ini, calls = run(tmp_path, "unstack", "clean")
    assert ini.get("securitygroup", "firewall_driver") == "openvswitch"
    assert not [k for k in ini.options("sg_ofctl") if not k.startswith("#")]
    assert "pip_uninstall sg-ofctl" in calls
    assert "sudo rm -f /usr/local/bin/sg-ofctl" in calls
    conf = tmp_path / "etc" / "neutron" / "plugins" / "ml2" / "ml2_conf.ini"
    once = conf.read_text()
    run(tmp_path, "unstack", "clean")
    assert conf.read_text() == once


def test_plugin_does_nothing_on_a_node_without_the_ovs_agent(tmp_path):
    ini, calls = run(tmp_path, "stack:install", "stack:post-config",
                     ENABLED_SERVICES="q-svc")
    assert ini.get("securitygroup", "firewall_driver") == "openvswitch"
    assert not [c for c in calls if c.startswith("setup_develop")]


def test_bashate_with_devstacks_settings():
    files = [str(p) for p in (ROOT / "devstack").iterdir() if p.name in ("plugin.sh",
                                                                          "settings")]
    files += [str(p) for p in (ROOT / "tests" / "devstack").glob("*.sh")]
    bashate = ROOT / ".venv" / "bin" / "bashate"
    proc = subprocess.run([str(bashate), "-v", "-iE006", "-eE005,E042", *files],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "E0" not in proc.stdout, proc.stdout + proc.stderr
