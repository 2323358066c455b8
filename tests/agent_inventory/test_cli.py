"""``backdesk-agent inventory``: offline, no enrollment, the document to stdout or a file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import assert_valid

AGENT = str(Path(sys.executable).parent / "backdesk-agent")
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux collectors")


def run(*args: str, config_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AGENT, "--config-dir", str(config_dir), "inventory", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_prints_the_glpi_document_to_stdout(tmp_path, validator):
    result = run(config_dir=tmp_path / "never-enrolled")
    assert result.returncode == 0, result.stderr
    assert "Collecting the inventory" in result.stderr
    document = json.loads(result.stdout)
    assert_valid(validator, document)
    assert document["itemtype"] == "Computer" and document["content"]["softwares"]


def test_json_format_writes_the_content_to_a_file(tmp_path, validator):
    out = tmp_path / "inv.json"
    result = run("--format", "json", "-o", str(out), config_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and "Inventory written to" in result.stderr
    text = out.read_text()
    assert text.startswith("{\n  ")  # indented for people
    content = json.loads(text)
    assert "deviceid" not in content and content["operatingsystem"]["kernel_name"] == "linux"
    assert_valid(validator, {"deviceid": "x", "content": content})


def test_unwritable_output_is_one_sentence_and_exit_1(tmp_path):
    result = run("-o", str(tmp_path / "missing" / "inv.json"), config_dir=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("backdesk-agent: error: cannot write")
    assert result.stdout == ""
