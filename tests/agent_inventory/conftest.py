"""The vendored GLPI schema as a validator, and fake /proc, /sys, /etc trees."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

FIXTURES = Path(__file__).parent.parent / "fixtures" / "glpi"
RECORDED = Path(__file__).parent / "recorded"


@pytest.fixture(scope="session")
def validator() -> Draft7Validator:
    schema = json.loads((FIXTURES / "glpi-inventory.schema.json").read_text())
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)


def assert_valid(validator: Draft7Validator, document: dict[str, Any]) -> None:
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in errors[:20]
    )


def assert_no_placeholders(value: Any, path: str = "") -> None:
    """Never invented: no empty strings, no negative numbers, no 1970 dates."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert_no_placeholders(item, f"{path}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            assert_no_placeholders(item, f"{path}/{index}")
    elif isinstance(value, str):
        assert value.strip(), f"empty string at {path}"
        assert not value.startswith("1970-"), f"epoch date at {path}"
    elif isinstance(value, bool):
        pass
    elif isinstance(value, int | float):
        assert value >= 0, f"negative number at {path}"


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data)
    return root
