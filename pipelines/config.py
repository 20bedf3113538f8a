"""`PipelineConfig`: everything the workflow builders need, typed and validated before any YAML exists.

A profile only changes parameter *defaults*: the compiled structure is the same for every platform,
because platform differences live inside the steps (the profile is itself a workflow parameter).
"""

from __future__ import annotations

import re
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kaic.errors import ConfigError
from kaic.images import IMAGE_REF as _IMAGE
from kaic.profiles import Profile

TEMPLATE_NAME = "kaic-conformance"
CRON_NAME = "kaic-conformance-nightly"
DEFAULT_SCHEDULE = "0 2 * * *"

# Argo's cron parser (robfig/cron) takes 5 fields or a descriptor such as @daily / @every 6h.
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?/,\-]+$")
_DESCRIPTOR = re.compile(r"^@(yearly|annually|monthly|weekly|daily|midnight|hourly|every [0-9a-z.]+)$")
# Kubernetes image references: no whitespace, no quotes; a registry/name[:tag][@digest].


_CRON_RANGES = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
                ("day of week", 0, 6))
_CRON_NAMES = {
    3: {m: i + 1 for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])},
    4: {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])},
}


def _cron_value(text: str, index: int) -> int:
    names = _CRON_NAMES.get(index, {})
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a number")
    return int(text)


def _check_cron_field(text: str, index: int) -> None:
    """One field of robfig/cron's 5-field spec: comma list of `*`, `?`, `N`, `N-M`, each with `/STEP`."""
    label, low, high = _CRON_RANGES[index]
    for item in text.split(","):
        body, slash, step = item.partition("/")
        if slash and (not step.isdigit() or int(step) < 1):
            raise ValueError(f"{label} {item!r}: the step must be a positive number")
        if body in ("*", "?"):
            continue
        first, dash, last = body.partition("-")
        try:
            values = [_cron_value(first, index)] + ([_cron_value(last, index)] if dash else [])
        except ValueError as exc:
            raise ValueError(f"{label} {item!r}: {exc}") from None
        for v in values:
            if not low <= v <= high:
                raise ValueError(f"{label} {v} is out of range {low}-{high}")
        if dash and values[0] > values[1]:
            raise ValueError(f"{label} {item!r}: range beginning is after its end")


def check_cron(expr: str) -> str:
    fields = expr.split()
    if _DESCRIPTOR.match(expr.strip()):
        return expr.strip()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise ValueError(f"{expr!r} is not a cron expression (5 fields like '0 2 * * *', or @daily)")
    for i, f in enumerate(fields):
        try:
            _check_cron_field(f, i)
        except ValueError as exc:
            raise ValueError(f"{expr!r}: {exc}") from None
    return expr.strip()


class PipelineConfig(BaseModel):
    """Parameter defaults and schedule for the conformance WorkflowTemplate and its CronWorkflow."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    profile: str = "generic"  # a built-in profile name or a path inside the step image
    suite: Literal["quick", "full"] = "quick"
    image: str = "ghcr.io/kaic-dev/kaic:0.1.0"
    world_size: int = Field(2, ge=1)
    accelerators_per_worker: int = Field(0, ge=0)
    platform: str = ""  # "" = the profile's platform label
    object_store: str = ""  # "" = the profile's, then the step's default
    results: str = ""
    mlflow_uri: str = ""
    schedules: tuple[str, ...] = (DEFAULT_SCHEDULE,)
    timezone: str = "UTC"

    @field_validator("image")
    @classmethod
    def _image(cls, v: str) -> str:
        if not _IMAGE.match(v):
            raise ValueError(f"{v!r} is not a container image reference")
        return v

    @field_validator("schedules")
    @classmethod
    def _schedules(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("at least one cron schedule is needed")
        return tuple(check_cron(s) for s in v)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not an IANA time zone (e.g. UTC, Europe/Paris)") from None
        return v

    @staticmethod
    def from_profile(profile: Profile, profile_ref: str, **overrides: object) -> PipelineConfig:
        """Defaults taken from a loaded profile; `overrides` (flags) win. Bad values raise ConfigError."""
        values: dict[str, object] = {
            "profile": profile_ref,
            "image": profile.image,
            "world_size": profile.training.world_size,
            "accelerators_per_worker": profile.accelerator.per_worker,
            "object_store": profile.storage.object_store or "",
            "results": profile.storage.results or "",
            "mlflow_uri": profile.endpoints.mlflow_uri or "",
        }
        flags = {k: v for k, v in overrides.items() if v is not None}
        values.update(flags)
        # Name the source of a bad value: the flag that set it, or the profile it came from.
        sources = {k: _FLAGS.get(k, "--" + k.replace("_", "-")) for k in flags}
        return parse_pipeline_config(values, f"profile {profile_ref!r}", sources)


_FLAGS = {"schedules": "--cron"}


def parse_pipeline_config(values: dict[str, object], source: str,
                          field_sources: dict[str, str] | None = None) -> PipelineConfig:
    try:
        return PipelineConfig.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        where = ".".join(str(p) for p in err["loc"]) or "(config)"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if field_sources and field in field_sources:
            raise ConfigError(f"{field_sources[field]}: {msg}") from None
        raise ConfigError(f"{source}: {where}: {msg}") from None
