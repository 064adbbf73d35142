"""deploy/kubernetes: every manifest valid against a pinned Kubernetes
version's schemas (offline: kubernetes-validate ships them), the ConfigMap's
TOML only `softena up` options, and the DaemonSet what the brief of a node
agent asks: host network, the systemd unit's capabilities and no more, probes
and scrape annotations on the metrics port, memory for the UMEM it maps."""

from __future__ import annotations

import argparse
import copy
import re
from pathlib import Path

import kubernetes_validate
import pytest
import tomllib
import yaml

from softena.cli.main import build_parser
from softena.control.config import METRICS_PORT_BASE
from softena.datapath.datapath import DatapathConfig

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
# A release still in wide use; kubernetes-validate ships its schemas.
KUBERNETES_VERSION = "1.32.0"
MIB = 1 << 20
HEADROOM = 64 * MIB


def resources() -> dict[str, dict]:
    """Every manifest's resources, by kind (one of each)."""
    found: dict[str, dict] = {}
    for path in MANIFESTS:
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc:
                    assert doc["kind"] not in found, f"a second {doc['kind']} in {path.name}"
                    found[doc["kind"]] = doc
    return found


def container() -> dict:
    return resources()["DaemonSet"]["spec"]["template"]["spec"]["containers"][0]


def device_config() -> dict:
    return tomllib.loads(resources()["ConfigMap"]["data"]["softena.toml"])


def up_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["up"]


def quantity(text: str) -> int:
    """Bytes of a Kubernetes memory quantity such as 128Mi."""
    number, suffix = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", text).groups()
    return int(number) << {"Ki": 10, "Mi": 20, "Gi": 30, None: 0}[suffix]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_is_valid_against_the_kubernetes_schemas(path: Path) -> None:
    with open(path) as f:
        for doc in yaml.safe_load_all(f):
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_a_misspelt_field() -> None:
    daemonset = copy.deepcopy(resources()["DaemonSet"])
    daemonset["spec"]["template"]["spec"]["hostNetwrok"] = daemonset["spec"]["template"]["spec"].pop("hostNetwork")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(daemonset, KUBERNETES_VERSION, strict=True)


def test_every_resource_lives_in_the_softena_namespace() -> None:
    found = resources()
    assert set(found) == {"Namespace", "ServiceAccount", "ConfigMap", "DaemonSet"}
    assert found["Namespace"]["metadata"]["name"] == "softena"
    assert [p.name for p in MANIFESTS][0].endswith("namespace.yaml"), "kubectl apply -f DIR goes in name order"
    for kind, doc in found.items():
        if kind != "Namespace":
            assert doc["metadata"]["namespace"] == "softena", kind


def test_the_config_names_only_softena_up_options_and_parses_with_them() -> None:
    parser = up_parser()
    longs = {s.removeprefix("--") for a in parser._actions for s in a.option_strings if s.startswith("--")}
    # Not settings of a device: what the command line itself is for.
    allowed = (longs - {"help", "foreground", "config"}) | {"name"}
    config = device_config()
    assert set(config) <= allowed, f"not a softena up option: {set(config) - allowed}"
    argv = ["up", str(config["name"])]
    for key, value in config.items():
        if key != "name":
            argv += [f"--{key}"] if value is True else [f"--{key}", str(value)]
    args = build_parser().parse_args(argv)  # the CLI's own types and choices: exits on a bad value
    assert args.queues == config["queues"]
    assert config["wire"].startswith("xdp:"), "a node's wire is a NIC of its own"


def test_the_daemonset_runs_on_every_node_on_the_host_network() -> None:
    daemonset = resources()["DaemonSet"]
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert {"operator": "Exists"} in pod["tolerations"]
    account = resources()["ServiceAccount"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert account["automountServiceAccountToken"] is False and pod["automountServiceAccountToken"] is False
    # Teardown is given as long as the systemd unit gives it.
    unit = (DEPLOY / "softena@.service").read_text()
    assert pod["terminationGracePeriodSeconds"] >= int(re.search(r"^TimeoutStopSec=(\d+)", unit, re.M)[1])
    c = container()
    assert c["command"] == ["softena", "up", "--foreground", "--config", "/etc/softena/softena.toml",
                            "--metrics-address", "$(NODE_IP)"]
    assert {"name": "NODE_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}} in c["env"]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/etc/softena"]]["configMap"]["name"] == resources()["ConfigMap"]["metadata"]["name"]
    assert "emptyDir" in volumes[mounts["/run/softena"]]
    assert volumes[mounts["/dev/net/tun"]]["hostPath"] == {"path": "/dev/net/tun", "type": "CharDevice"}


def test_the_container_has_the_systemd_units_capabilities_and_no_more() -> None:
    unit = (DEPLOY / "softena@.service").read_text()
    wanted = {c.removeprefix("CAP_") for c in re.search(r"^CapabilityBoundingSet=(.*)$", unit, re.M)[1].split()}
    sc = container()["securityContext"]
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert set(sc["capabilities"]["add"]) == wanted
    assert sc["privileged"] is False and sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True


def test_probes_and_scrape_annotations_name_the_metrics_port() -> None:
    template = resources()["DaemonSet"]["spec"]["template"]
    c = container()
    port = next(p for p in c["ports"] if p["name"] == "metrics")
    assert port["containerPort"] == METRICS_PORT_BASE, "one device a node: the first slot's port"
    notes = template["metadata"]["annotations"]
    assert notes == {"prometheus.io/scrape": "true", "prometheus.io/port": str(METRICS_PORT_BASE),
                     "prometheus.io/path": "/metrics"}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        # No host: the pod IP, under hostNetwork the node's, where --metrics-address puts it.
        assert c[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}, probe


def test_memory_is_the_umem_of_the_configured_queues_plus_headroom() -> None:
    config = device_config()
    native = DatapathConfig(num_queues=config["queues"], wire_kind="xsk", wire_mtu=1500).native()
    umem = native.frames_per_queue * native.frame_size * native.num_queues
    memory = container()["resources"]
    assert quantity(memory["requests"]["memory"]) == quantity(memory["limits"]["memory"])
    assert quantity(memory["limits"]["memory"]) >= umem + HEADROOM, \
        f"UMEM {umem // MIB} MiB + {HEADROOM // MIB} MiB headroom"
    assert "cpu" not in memory["limits"], "a CPU limit throttles the datapath"
