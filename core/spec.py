"""The base of every spec: frozen, strict about unknown keys, and round-trips through JSON."""

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class Spec(BaseModel):
    """Frozen pydantic model; derived (computed) fields in input, such as hashes, are recomputed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _drop_derived(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if key not in cls.model_computed_fields}
        return data
