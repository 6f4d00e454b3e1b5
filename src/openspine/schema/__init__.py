"""The versioned JSON Schema of result.json, and validation against it."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import OpenSpineError

SCHEMA_PATH = Path(__file__).parent / "result.schema.json"


class SchemaError(OpenSpineError):
    """A result document does not follow the schema."""


@lru_cache(maxsize=1)
def result_schema() -> dict[str, Any]:
    return dict(json.loads(SCHEMA_PATH.read_text()))


def validate_result(document: dict[str, Any]) -> None:
    """Raise :class:`SchemaError` naming the first problem if ``document`` is not a valid result."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(result_schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.path) or "(top level)"
        raise SchemaError(f"result.json is not valid at {where}: {e.message}")
