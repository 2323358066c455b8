"""The real inventory of this Linux machine validates against the vendored GLPI schema."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from agent import __version__
from agent.inventory import collect

from .conftest import FIXTURES, assert_no_placeholders, assert_valid

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux collectors")


@pytest.mark.parametrize("name", ["glpi-example-computer_1.json", "glpi-example-computer_2.json"])
def test_upstream_examples_validate(validator, name):
    """Sanity check of the validator itself: GLPI's own examples pass."""
    assert_valid(validator, json.loads((FIXTURES / name).read_text()))


def test_validator_catches_invalid_documents(validator):
    bad = {"deviceid": "x", "content": {"versionclient": "v", "networks": [{"ipaddress": "1.2.3"}]}}
    assert list(validator.iter_errors(bad))  # missing description, bad ipv4
    assert list(validator.iter_errors({"deviceid": "x", "content": {}, "extra": 1}))


@pytest.fixture(scope="module")
def live() -> dict[str, Any]:
    return collect("test-device")


def test_live_document_is_valid(live, validator):
    assert_valid(validator, live)
    assert_no_placeholders(live)
    assert live["deviceid"] == "test-device"
    assert live["action"] == "inventory" and live["itemtype"] == "Computer"
    assert live["content"]["versionclient"] == f"Backdesk-Agent_v{__version__}"


def test_live_document_has_this_machines_sections(live):
    c = live["content"]
    assert c["hardware"]["name"] and c["hardware"]["memory"] > 0
    assert c["hardware"].get("vmsystem")
    os_ = c["operatingsystem"]
    for key in ("name", "full_name", "kernel_name", "kernel_version", "arch", "boot_time"):
        assert os_.get(key), key
    assert set(os_["timezone"]) == {"name", "offset"}
    assert c["cpus"] and c["cpus"][0]["name"] and c["cpus"][0]["thread"] >= 1
    assert any(d["type"] == "/" and d["total"] > 0 for d in c["drives"])
    assert any(n.get("mac") and n["mac"] != "00:00:00:00:00:00" for n in c["networks"])
    assert any(n.get("ipaddress") == "127.0.0.1" for n in c["networks"])
    assert len(c["softwares"]) > 50 and all(s["from"] == "deb" for s in c["softwares"])
    assert any(s["name"] == "dpkg" for s in c["softwares"])
    assert any(p["pid"] == 1 for p in c["processes"])
    assert any(u["login"] == "root" and u["id"] == "0" for u in c["local_users"])
    assert any(g["name"] == "root" for g in c["local_groups"])
    assert c["storages"] and all(s["disksize"] > 0 for s in c["storages"])
    assert c["accesslog"]["logdate"] and "envs" in c
    assert not any(e["key"].endswith("TOKEN") for e in c["envs"])


def test_live_bios_when_readable(live):
    from pathlib import Path

    if not Path("/sys/class/dmi/id/bios_vendor").exists():
        assert "bios" not in live["content"]  # a container: omitted, not invented
    else:
        assert live["content"]["bios"]
