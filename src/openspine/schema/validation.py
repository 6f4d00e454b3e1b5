"""Validation of result.json against its versioned JSON Schema (the compiled validator first, the reference one
for the message)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import OpenSpineError

SCHEMA_PATH = Path(__file__).parent / "result.schema.json"


class SchemaError(OpenSpineError):
    """A result document does not follow the schema."""


@lru_cache(maxsize=1)
def result_schema() -> dict[str, Any]:
    return dict(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


@lru_cache(maxsize=1)
def _fast_validator() -> Callable[[Any], Any]:
    """The schema compiled to Python code: about 40x faster than walking it (0.01 s against 0.4 s for a
    lumbar volume's result, measured), which matters when every case of a cohort is validated on write."""
    import fastjsonschema

    return fastjsonschema.compile(result_schema())  # type: ignore[no-any-return]


def validate_result(document: dict[str, Any]) -> None:
    """Raise :class:`SchemaError` naming the first problem if ``document`` is not a valid result."""
    import fastjsonschema

    try:
        _fast_validator()(document)
        return
    except fastjsonschema.JsonSchemaException as exc:
        fast_message = str(exc)
    # invalid: the reference validator gives the clearest message (where, and which rule)
    import jsonschema

    validator = jsonschema.Draft202012Validator(result_schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    if not errors:  # the two validators disagree: trust the stricter one, but say which rule it applied
        raise SchemaError(f"result.json is not valid: {fast_message}")
    e = errors[0]
    where = "/".join(str(p) for p in e.path) or "(top level)"
    raise SchemaError(f"result.json is not valid at {where}: {e.message}")
