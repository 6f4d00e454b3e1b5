"""The versioned JSON Schema of result.json (``result.schema.json``), and validation against it (:mod:`.validation`)."""

from __future__ import annotations

from .validation import SCHEMA_PATH, SchemaError, result_schema, validate_result

__all__ = ["SCHEMA_PATH", "SchemaError", "result_schema", "validate_result"]
