"""The public API for plugin authors: everything a rule, source or delivery needs, from one module.

    from pipeline.api import rule, StepContext, TEXT, arrow, series, check_rule

`__all__` below is the contract: these names keep their meaning across releases, and a change to
one is announced. Everything else under `pipeline` is internal and may move; a plugin that imports
it may break on any upgrade. docs/plugins.md describes each name.

Why a module of the engine and not a package of its own (`route_sdk`): the names already live in
the `route-etl` distribution every plugin depends on, so one more module costs plugin authors
nothing to install and keeps one version number for the engine and the API it promises.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pipeline.basics.columnflow import ColumnFlow, uses
from pipeline.basics.context import StepContext
from pipeline.basics.errors import DeliveryFailed, OptionError, RouteError, RunFailed
from pipeline.basics.plugins import delivery, rule, source
from pipeline.deliveries.base import Delivery, DeliveryResult
from pipeline.sources.base import Source, SourceProtocol

if TYPE_CHECKING:
    from pipeline.basics.dtypes import (
        BOOLEAN,
        DATE,
        DATETIME,
        INTEGER,
        NUMBER,
        TEXT,
        arrow,
        datetime_dtype,
        frame_from_arrow,
        route_type_of,
        series,
    )
    from pipeline.testing import (
        CheckResult,
        DeliveryCheck,
        SourceCheck,
        check_delivery,
        check_rule,
        check_source,
        step_context,
    )

# The column types (pandas dtypes) and the conformance kits need pandas: they are imported when a
# plugin first asks for one (PEP 562), so that a plugin module importing only `rule` or `source`
# from here costs `route validate` no pandas.
_LATER = {
    **dict.fromkeys(
        (
            "BOOLEAN",
            "DATE",
            "DATETIME",
            "INTEGER",
            "NUMBER",
            "TEXT",
            "arrow",
            "datetime_dtype",
            "frame_from_arrow",
            "route_type_of",
            "series",
        ),
        "pipeline.basics.dtypes",
    ),
    **dict.fromkeys(
        ("CheckResult", "DeliveryCheck", "SourceCheck", "check_delivery", "check_rule", "check_source", "step_context"),
        "pipeline.testing",
    ),
}


def __getattr__(name: str) -> Any:
    if name not in _LATER:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LATER[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LATER})


__all__ = [
    # markers: declare a component (registration is by entry point or dotted path)
    "rule",
    "source",
    "delivery",
    # what a rule does to the columns, for the check before the run (`@rule(..., columns=uses(...))`)
    "uses",
    "ColumnFlow",
    # what a component is handed and builds on
    "StepContext",
    "Source",
    "SourceProtocol",
    "Delivery",
    "DeliveryResult",
    # errors a component raises
    "RouteError",
    "OptionError",
    "RunFailed",
    "DeliveryFailed",
    # column types of the canonical table, and zero-copy Arrow helpers
    "TEXT",
    "INTEGER",
    "NUMBER",
    "BOOLEAN",
    "DATE",
    "DATETIME",
    "datetime_dtype",
    "arrow",
    "series",
    "frame_from_arrow",
    "route_type_of",
    # conformance kits for the plugin's own tests
    "check_rule",
    "check_source",
    "check_delivery",
    "step_context",
    "CheckResult",
    "SourceCheck",
    "DeliveryCheck",
]
