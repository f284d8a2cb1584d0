"""The ``_esphomelib._tcp`` advertisement, browsed as Home Assistant would, on a private
network the test makes: two network namespaces joined by a veth pair (mDNS cannot be
exercised on a shared network). Skipped where namespaces cannot be made (not root, or a
container without the right)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from firmware_app.edges.esphome.identity import derived_mac

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="network namespaces are Linux")
ROOT = Path(__file__).resolve().parent.parent
KEY = "px7tsbK3C7bpXHr2OevEV2ZMg/FrNBw2+O2pNPbedtA="

DEVICE = textwrap.dedent(
    """
    import sys
    from contextlib import ExitStack
    from firmware_app.config.settings import Settings
    from firmware_app.edges.esphome.wiring import build_satellite
    settings = Settings(
        data_dir=sys.argv[1],
        esphome={"enabled": True, "port": int(sys.argv[3]), "encryption_key": sys.argv[2]},
        mqtt={"device_id": "den"},
    )
    with ExitStack() as stack:
        sat = build_satellite(settings, print, dict, stack)
        print("ready", flush=True)
        sys.stdin.read()
    """
)

BROWSER = textwrap.dedent(
    """
    import json, sys, time
    from zeroconf import ServiceBrowser, ServiceListener, Zeroconf
    found = {}
    class Listener(ServiceListener):
        def add_service(self, zc, type_, name):
            info = zc.get_service_info(type_, name, timeout=3000)
            if info is not None:
                found[name] = {
                    "port": info.port,
                    "addresses": info.parsed_addresses(),
                    "properties": {
                        k.decode(): (v or b"").decode() for k, v in info.properties.items()
                    },
                }
        update_service = add_service
        def remove_service(self, zc, type_, name):
            pass
    zc = Zeroconf()
    ServiceBrowser(zc, "_esphomelib._tcp.local.", Listener())
    deadline = time.monotonic() + 15
    while len(found) < int(sys.argv[1]) and time.monotonic() < deadline:
        time.sleep(0.1)
    zc.close()
    print(json.dumps(found))
    """
)


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=10)


@pytest.fixture
def network():
    tag = uuid.uuid4().hex[:6]
    dev, ha = f"ttbt5d{tag}", f"ttbt5h{tag}"
    try:
        sh("ip", "netns", "add", dev)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"network namespaces cannot be made here: {exc}")
    try:
        try:
            sh("ip", "netns", "add", ha)
            veth = f"v{tag}d netns {dev} type veth peer v{tag}h netns {ha}"
            sh("ip", "link", "add", *veth.split())
            for ns, link, addr in (
                (dev, f"v{tag}d", "10.77.0.1/24"),
                (ha, f"v{tag}h", "10.77.0.2/24"),
            ):
                sh("ip", "-n", ns, "addr", "add", addr, "dev", link)
                sh("ip", "-n", ns, "link", "set", link, "up", "multicast", "on")
                sh("ip", "-n", ns, "link", "set", "lo", "up")
                sh("ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev", link)
        except (OSError, subprocess.CalledProcessError) as exc:
            pytest.skip(f"a private network (veth between namespaces) cannot be made here: {exc}")
        yield dev, ha
    finally:
        for ns in (dev, ha):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


def start_device(dev: str, data: Path, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    device = subprocess.Popen(
        ["ip", "netns", "exec", dev, sys.executable, "-c", DEVICE, str(data), KEY, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert device.stdout is not None
    line = device.stdout.readline()
    assert line.strip() == "ready", device.stderr.read() if device.stderr else line
    return device


def browse(ha: str, expected: int) -> dict[str, dict]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        ["ip", "netns", "exec", ha, sys.executable, "-c", BROWSER, str(expected)],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    return json.loads(done.stdout or "{}")


def stop(device: subprocess.Popen[str]) -> str:
    if device.stdin is not None:
        device.stdin.close()
    device.wait(timeout=15)
    return device.stderr.read() if device.stderr else ""


def test_home_assistant_discovers_the_satellite_with_its_txt_records(network, tmp_path):
    dev, ha = network
    device = start_device(dev, tmp_path / "data", 16053)
    try:
        found = browse(ha, 1)
    finally:
        stop(device)
    assert list(found) == ["ttbt5-den._esphomelib._tcp.local."]
    service = found["ttbt5-den._esphomelib._tcp.local."]
    assert service["port"] == 16053 and service["addresses"] == ["10.77.0.1"]
    props = service["properties"]
    assert props["mac"] == derived_mac("den").replace(":", "").lower()
    assert props["platform"] and props["version"]
    assert props["api_encryption"] == "Noise_NNpsk0_25519_ChaChaPoly_SHA256"


def test_a_second_speaker_with_the_same_name_is_advertised_renamed(network, tmp_path):
    """Two speakers set up with one ``device_id``: the second keeps running and is found
    as ``name-2`` (a name conflict costs the name, never the service)."""
    dev, ha = network
    first = start_device(dev, tmp_path / "one", 16053)
    try:
        assert browse(ha, 1)  # the first is on the network before the second starts
        second = start_device(dev, tmp_path / "two", 16054)
        try:
            found = browse(ha, 2)
            assert second.poll() is None
        finally:
            said = stop(second)
    finally:
        stop(first)
    assert sorted(found) == [
        "ttbt5-den-2._esphomelib._tcp.local.",
        "ttbt5-den._esphomelib._tcp.local.",
    ]
    assert found["ttbt5-den-2._esphomelib._tcp.local."]["port"] == 16054
    assert "another device on the network is called ttbt5-den" in said
