"""What the explorer's controls can change: each state's main levers, as scenario fields.

A lever is a scenario field (``countries.<state>.<field>`` or ``market.<field>``); its allowed
range and unit are read from the scenario's own field declarations (:mod:`abm.scenario`), so the
sliders cannot offer a value the loader would refuse. Changed levers become ``--set``-style
overrides, applied when the run is reset. An uploaded TOML is validated by the same loader as
``lanthanide validate``, with the same one-line messages.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

from abm.scenario import (
    CountryParams,
    MarketParams,
    Scenario,
    ScenarioError,
    load_scenario,
)

MAX_UPLOAD_BYTES = 1_000_000


@dataclass(frozen=True)
class Lever:
    """One control: a scenario field with its label, bounds and step for a slider."""

    field: str
    label: str
    lo: float | None = None
    hi: float | None = None
    step: float | None = None
    kind: str = "float"  # float, int, bool, choice
    choices: tuple[str, ...] = ()
    unit: str = ""


def _meta(cls, name: str) -> dict:
    return {f.name: f.metadata for f in dataclasses.fields(cls)}[name]


def _lever(cls, name: str, label: str, hi: float | None = None, step: float | None = None):
    meta = _meta(cls, name)
    hint = {f.name: f.type for f in dataclasses.fields(cls)}[name]
    kind = {"bool": "bool", "int": "int", "float": "float", "str": "choice"}.get(str(hint), "float")
    lo = meta.get("lo")
    top = meta.get("hi")
    if hi is not None and top is not None:
        top = min(top, hi)  # a slider's sensible top, never beyond what the loader allows
    return Lever(
        name,
        label,
        lo,
        top,
        step,
        kind,
        tuple(meta.get("choices") or ()),
        meta.get("unit", ""),
    )


STATE_LEVERS: tuple[Lever, ...] = (
    _lever(CountryParams, "strategy", "strategy"),
    _lever(CountryParams, "resolve", "resolve (pain borne before conceding)", 5.0, 0.05),
    _lever(CountryParams, "stockpile_target_days", "stockpile target", 365.0, 15.0),
    _lever(CountryParams, "rule_restrict_tension", "restricts at tension", 2.0, 0.05),
    _lever(CountryParams, "rule_instrument", "restriction instrument"),
    _lever(CountryParams, "rule_approval_rate", "licences approved", None, 0.05),
    _lever(CountryParams, "rule_heavy_only", "restrict heavy (Dy/Tb) only"),
    _lever(CountryParams, "rule_lift_after_months", "lifts after (no concession)", 120.0, 1.0),
    _lever(CountryParams, "rule_stockpile_days", "stockpile when at risk", 365.0, 15.0),
    _lever(CountryParams, "rule_finance_usd_per_year", "finance for new supply", 5e9, 1e8),
    _lever(
        CountryParams,
        "rule_recycling_subsidy_usd_per_kg",
        "recycling subsidy",
        50.0,
        1.0,
    ),
    _lever(CountryParams, "rule_rd_usd_per_year", "substitution R&D", 2e9, 5e7),
    _lever(CountryParams, "permit_months", "permitting time", 120.0, 1.0),
)
"""The main levers of every state (``countries.<state>.<field>``)."""

MARKET_LEVERS: tuple[Lever, ...] = (
    _lever(MarketParams, "leakage_share", "leakage around restrictions", None, 0.05),
)
"""World levers (``market.<field>``)."""


def current_value(scn: Scenario, path: str):
    """The value of a lever path (``countries.Japan.resolve``, ``market.leakage_share``)."""
    parts = path.split(".")
    if parts[0] == "countries":
        country = next(c for c in scn.countries if c.name == parts[1])
        return getattr(country, parts[2])
    return getattr(getattr(scn, parts[0]), parts[1])


def overrides(changes: dict[str, object]) -> list[str]:
    """``KEY=VALUE`` override strings (as ``--set`` takes) for the changed levers."""
    out = []
    for path, value in sorted(changes.items()):
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str):
            text = f'"{value}"'
        elif isinstance(value, float) and value.is_integer() and abs(value) >= 1e6:
            text = f"{value:.0f}"
        else:
            text = repr(value)
        out.append(f"{path}={text}")
    return out


def parse_seed(text: str | int | None) -> int:
    """A seed typed into a text box (a string) as the integer the model takes.

    Raises:
        ScenarioError: not a whole number 0 or more (the message names the field).
    """
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        s = str(text if text is not None else "").strip()
        if not s.lstrip("-").isdigit():
            raise ScenarioError(f"seed: {s!r} is not a whole number; allowed 0 to 2^63-1")
        value = int(s)
    if not 0 <= value < 2**63:
        raise ScenarioError(f"seed: {value} is out of range; allowed 0 to 2^63-1")
    return value


def load_uploaded(name: str, text: str | None) -> Scenario:
    """Validate an uploaded scenario file exactly as ``lanthanide validate`` does.

    Args:
        name: the file's name as uploaded (used in messages).
        text: its content (None when too large to upload).

    Returns:
        The validated scenario.

    Raises:
        ScenarioError: with the loader's one-line message, naming the file and the field.
    """
    label = Path(name).name or "upload.toml"
    if not label.endswith(".toml"):
        raise ScenarioError(f"{label}: expected a .toml scenario file")
    if text is None or len(text.encode()) > MAX_UPLOAD_BYTES:
        raise ScenarioError(f"{label}: file too large; allowed up to {MAX_UPLOAD_BYTES:,} bytes")
    with tempfile.TemporaryDirectory(prefix="lanthanide-upload-") as tmp:
        path = Path(tmp) / label
        path.write_text(text, encoding="utf-8")
        try:
            return load_scenario(str(path))
        except ScenarioError as exc:
            raise ScenarioError(str(exc).replace(str(path), label)) from None


def configure(
    base: Scenario,
    changes: dict[str, object] | None = None,
    *,
    seed: int | None = None,
    firms: int | None = None,
) -> Scenario:
    """The scenario to run: ``base`` with the changed levers, seed and number of firms.

    Validated by the scenario loader, so an out-of-range value raises its
    :class:`~abm.scenario.ScenarioError`.
    """
    from abm.scenario import apply_overrides, build_scenario

    raw = apply_overrides(base.to_dict(), overrides(changes or {}))
    for key, value in (("seed", seed), ("firms", firms)):
        if value is not None:
            raw[key] = value
    return build_scenario(raw)
