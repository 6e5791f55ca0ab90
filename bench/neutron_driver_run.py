"""One driver, one scenario, in a private Open vSwitch (child of bench/neutron.py;
runs with .venv-neutron's python inside the OVS's namespace).

Both drivers get the same thing the agent gives them: its native
OVSIntegrationBridge on its embedded os-ken app, and the driver API calls the
agent makes for the scenario (SecurityGroupAgentRpc._apply_port_filter's order,
inside defer_apply).  Prints "PROGRESS <ports>" lines while preparing ports and
one JSON line at the end."""
import json
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# bench/neutron.py would shadow the neutron package.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
sys.path.insert(0, os.path.join(HERE, "..", "tests", "neutron"))

import contract  # noqa: E402  (os-ken and the agent's bridge, as in the contract test)

BRIDGE = contract.BRIDGE


def rule_dicts(group):
    """The converted rules the agent passes (securitygroups_rpc_base): no id, the
    remote prefix renamed by direction, stateful on each rule."""
    out = []
    for rule in group["rules"]:
        d = {"direction": rule["direction"], "ethertype": rule["ethertype"],
             "stateful": group.get("stateful", True)}
        for key in ("protocol", "port_range_min", "port_range_max", "remote_group_id"):
            if rule.get(key) is not None:
                d[key] = rule[key]
        if rule.get("remote_ip_prefix"):
            key = "source_ip_prefix" if rule["direction"] == "ingress" else "dest_ip_prefix"
            d[key] = rule["remote_ip_prefix"]
        out.append(d)
    return out


def member_dict(pairs):
    out = {}
    for ip, mac in pairs:
        out.setdefault("IPv6" if ":" in ip else "IPv4", []).append((ip, mac))
    return out


def port_dict(port):
    return {"id": port["id"], "device": port["id"], "mac_address": port["mac"],
            "fixed_ips": [port["ip"]] if isinstance(port["ip"], str) else list(port["ip"]),
            "allowed_address_pairs": [], "port_security_enabled": True,
            "security_groups": list(port["security_groups"]), "device_owner": "compute:nova",
            "network_id": "net", "admin_state_up": True, "status": "ACTIVE"}


def plug(ports, vlan):
    for i in range(0, len(ports), 200):
        args = []
        for p in ports[i:i + 200]:
            dev = p["name"]
            args += ["--", "add-port", BRIDGE, dev, f"tag={vlan}", f"other_config:tag={vlan}",
                     "--", "set", "Interface", dev, "type=internal",
                     f"ofport_request={p['ofport']}", f"external_ids:iface-id={p['id']}",
                     f"external_ids:attached-mac={p['mac']}"]
        contract.sh("ovs-vsctl", "--timeout=120", *args)


def flow_count():
    out = contract.sh("ovs-ofctl", "-O", "OpenFlow13", "--no-stats", "dump-flows", BRIDGE).stdout
    return len(out.splitlines()) - 1


def neutron_without_daemons():
    """Neutron's driver outside the agent: privileged calls in-process (we are root),
    no conntrack-deleting worker thread (§6 of NEUTRON-DRIVER.md)."""
    from neutron import privileged
    from neutron.agent.linux import ip_conntrack
    for name in ("default", "ovs_vsctl_cmd", "namespace_cmd", "conntrack_cmd", "link_cmd",
                 "dhcp_release_cmd"):
        ctx = getattr(privileged, name, None)
        if ctx is not None:
            ctx.set_client_mode(False)
    ip_conntrack.IpConntrackManager._process_queue_worker = lambda self: None


class FlowOps:
    """Counts Neutron's flow operations (every one goes through do_action_flows)."""

    def __init__(self):
        from neutron.agent.common import ovs_lib
        self.count = 0
        original = ovs_lib.OVSBridge.do_action_flows
        counter = self

        def counted(bridge, action, kwargs_list, *args, **kwargs):
            counter.count += len(kwargs_list)
            return original(bridge, action, kwargs_list, *args, **kwargs)
        ovs_lib.OVSBridge.do_action_flows = counted


def main(driver_name, scenario_path):
    data = json.load(open(scenario_path))
    vlan = int(data.get("network", {}).get("local_vlan", 5) or 5)
    app, conf = contract.start_os_ken()
    br = contract.integration_bridge(app, conf)
    ops = None
    if driver_name == "neutron":
        neutron_without_daemons()
        ops = FlowOps()
        from neutron.agent.linux.openvswitch_firewall import OVSFirewallDriver
        fw = OVSFirewallDriver(br)
    else:
        from neutron.agent import firewall
        fw = firewall.load_firewall_driver_class("sg_ofctl")(integration_bridge=br)
    ports = data["ports"]
    plug(ports, vlan)
    baseline = flow_count()
    groups = {g["id"]: g for g in data["security_groups"]}
    rules = {gid: rule_dicts(g) for gid, g in groups.items()}
    members = {gid: member_dict(pairs) for gid, pairs in data["members"].items()}
    result = {"driver": driver_name, "scenario": data.get("scenario"), "completed": False}

    def mods(before):
        return fw.last_flow_mods if ops is None else ops.count - before

    t0 = time.monotonic()
    with fw.defer_apply():
        used = {g for p in ports for g in p["security_groups"]}
        for gid in sorted(used):
            fw.update_security_group_rules(gid, rules[gid])
        for gid in sorted(members):
            fw.update_security_group_members(gid, members[gid])
        for i, port in enumerate(ports, 1):
            fw.prepare_port_filter(port_dict(port))
            if i % 25 == 0:
                print(f"PROGRESS {i} {time.monotonic() - t0:.1f}", flush=True)
    result["first_batch_seconds"] = round(time.monotonic() - t0, 3)
    result["flows"] = flow_count() - baseline
    by_id = {p["id"]: p for p in ports}

    update = data["updates"]["rule_add"]
    gid = update["security_group_id"]
    rules[gid] = rules[gid] + rule_dicts({"rules": [update["rule"]],
                                         "stateful": groups[gid].get("stateful", True)})
    before, t0 = ops.count if ops else 0, time.monotonic()
    with fw.defer_apply():
        fw.update_security_group_rules(gid, rules[gid])
        for pid in update["affected_ports"]:
            fw.update_port_filter(port_dict(by_id[pid]))
    result["rule_add_seconds"] = round(time.monotonic() - t0, 4)
    result["rule_add_flow_mods"] = mods(before)

    update = data["updates"]["member_add"]
    gid = update["security_group_id"]
    pairs = [tuple(p) for p in data["members"][gid]] + [tuple(update["member"])]
    before, t0 = ops.count if ops else 0, time.monotonic()
    with fw.defer_apply():
        fw.update_security_group_members(gid, member_dict(pairs))
        for pid in update["affected_ports"]:
            fw.update_port_filter(port_dict(by_id[pid]))
    result["member_add_seconds"] = round(time.monotonic() - t0, 4)
    result["member_add_flow_mods"] = mods(before)

    new = dict(ports[0], id="port-bench-new", name="tapbenchnew", ofport=60000,
               mac="fa:16:3e:7f:ff:fe", ip="10.255.255.254")
    plug([new], vlan)
    # The agent learns of a port from its OVSDB monitor: wait until the bridge's
    # IDL has it, as the agent would, before timing the driver.
    contract.wait_for(lambda: getattr(br.get_vif_port_by_id(new["id"]), "ofport", -1) == 60000,
                      timeout=30)
    t0 = time.monotonic()
    with fw.defer_apply():
        fw.prepare_port_filter(port_dict(new))
    result["port_add_seconds"] = round(time.monotonic() - t0, 4)
    if new["id"] not in fw.ports:
        raise RuntimeError("the driver did not take the new port: port_add not measured")
    result["rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["completed"] = True
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    try:
        main(sys.argv[1], sys.argv[2])
    except BaseException:
        import traceback
        traceback.print_exc()
        sys.stdout.flush()
        os._exit(1)
    sys.stdout.flush()
    os._exit(0)
