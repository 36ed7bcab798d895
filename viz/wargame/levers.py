"""Each played state's lever menu, derived from the scenario's event types and country fields.

A lever is one number a team sets each turn. Every lever maps onto an existing event type of
``abm/scenario.py`` (``EVENT_TYPES``) or a strategy action (``lift``, ``end_dispute``), so a
team can do exactly what a scenario file or a strategy can do, and nothing else:

- *standing* levers (licensing, embargo, export tax, export quota, stockpile target, recycling
  subsidy, permitting) stay at their value until changed; a change lifts the state's own measure
  of that kind and, unless the lever is set to its "off" value, puts the new one in force;
- *per-turn* levers (finance for mines and refineries, substitution R&D) spend that much of the
  state's budget once, at the start of the turn, and go back to zero;
- *once* levers (concede, drop the dispute) act once when set to 1.

Ranges come from the scenario (a state's own permit months and stockpile target are the floor
and ceiling of its levers; spending cannot exceed the budget). See docs/LEVERS.md for what each
event type does in the model.
"""

from __future__ import annotations

from dataclasses import dataclass

from abm.constants import COUNTRIES, GOODS

STANDING, PER_TURN, ONCE = "standing", "per_turn", "once"
MUSD = 1e6


class MoveError(ValueError):
    """A move is refused; the message names the lever and its allowed range."""


def slug(country: str) -> str:
    """A country name as an identifier fragment ("United States" -> "united_states")."""
    return country.lower().replace(" ", "_")


@dataclass(frozen=True)
class Lever:
    """One lever of one state."""

    name: str
    label: str
    kind: str  # STANDING, PER_TURN or ONCE
    min: float
    max: float
    unit: str
    off: float  # the value that means "no measure"
    instrument: str  # the event type (or action) it drives
    cost: str  # how it is paid for
    help: str
    step: float = 0.01
    integer: bool = False

    def describe(self, value: float) -> dict:
        """The lever as the API shows it."""
        return {
            "value": value,
            "min": self.min,
            "max": self.max,
            "unit": self.unit,
            "label": self.label,
            "kind": self.kind,
            "off": self.off,
            "instrument": self.instrument,
            "cost": self.cost,
            "help": self.help,
            "step": self.step,
        }


def export_base_t_per_year(cp) -> float:
    """A state's normal exports (t REO/yr): mining capacity less its own end use, at least 1."""
    use = sum(cp.demand_t_per_year[g] for g in GOODS)
    return max(cp.mine_capacity_t_per_year - use, 0.1 * cp.mine_capacity_t_per_year, 1.0)


def rival_of(scn, country: str) -> str:
    """Whom a state's targeted export levers aim at: the scenario's target, or its coercer."""
    return scn.target if country != scn.target else scn.coercer


def menu(scn, model, country: str) -> list[Lever]:
    """The levers of ``country`` in the model's current state (ranges can depend on it).

    Args:
        scn: the game's scenario.
        model: the game's main model (for budget, disputes and the state's parameters).
        country: the state.
    """
    c = COUNTRIES.index(country)
    cp = scn.country(country)
    st = model.states[c]
    budget_m = max(st.budget_usd, 0.0) / MUSD
    out: list[Lever] = []
    if cp.mine_capacity_t_per_year > 0:
        t = rival_of(scn, country)
        ts = slug(t)
        out += [
            Lever(
                f"licensing_{ts}_approval",
                f"Export licences for {t}: share approved",
                STANDING,
                0.0,
                1.0,
                "share of normal exports",
                1.0,
                "licensing",
                "free; coercive (removed in the counterfactual)",
                f"Licensing of all rare earths exported to {t}; 1 = no licensing, 0 = none pass.",
            ),
            Lever(
                f"embargo_{ts}",
                f"Embargo on {t}",
                STANDING,
                0.0,
                1.0,
                "0 = off, 1 = on",
                0.0,
                "embargo",
                "free; coercive",
                f"A halt of concentrate and oxide exports to {t}; some leaks through third "
                "countries.",
                step=1.0,
                integer=True,
            ),
            Lever(
                "licensing_all_heavy_approval",
                "Licences for heavy rare earths (Dy/Tb) to every buyer: share approved",
                STANDING,
                0.0,
                1.0,
                "share of normal exports",
                1.0,
                "licensing",
                "free; coercive",
                "Element-specific pressure on everyone: Dy/Tb oxide and magnets need a licence.",
            ),
            Lever(
                "export_tax_rate",
                "Export tax",
                STANDING,
                0.0,
                1.0,
                "share of the export price",
                0.0,
                "export_tax",
                "earns revenue; coercive",
                "A tax on every rare-earth export; domestic and world prices split by the tax.",
            ),
            Lever(
                "export_quota_cut",
                "Export quota: cut from normal exports",
                STANDING,
                0.0,
                0.9,
                f"share of {export_base_t_per_year(cp):,.0f} t REO/yr",
                0.0,
                "export_quota",
                "free; coercive",
                "An annual cap on concentrate and oxide exports, as a cut from normal exports.",
            ),
        ]
    floor_days = float(cp.stockpile_target_days)
    host = cp.rule_finance_host or country
    out += [
        Lever(
            "stockpile_target_days",
            "State stockpile target",
            STANDING,
            floor_days,
            365.0,
            "days of use",
            floor_days,
            "stockpile",
            "bought at market prices as it fills (from the budget)",
            "The state buys oxide toward this many days of its use and releases it in a shortage.",
            step=15.0,
            integer=True,
        ),
        Lever(
            "finance_mines_musd",
            f"Finance new mines in {host}",
            PER_TURN,
            0.0,
            round(budget_m, 1),
            "US$ million this turn",
            0.0,
            "finance",
            "from the budget, this turn",
            "Money for mining projects there: pays up to 80% of a project's capital; projects "
            "take years.",
            step=50.0,
        ),
        Lever(
            "finance_refineries_musd",
            f"Finance new separation plants in {host}",
            PER_TURN,
            0.0,
            round(budget_m, 1),
            "US$ million this turn",
            0.0,
            "finance",
            "from the budget, this turn",
            "Money for separation (refining) projects there.",
            step=50.0,
        ),
        Lever(
            "substitution_rd_musd",
            "Substitution and thrifting R&D",
            PER_TURN,
            0.0,
            round(budget_m, 1),
            "US$ million this turn",
            0.0,
            "substitution_rd",
            "from the budget, this turn",
            "Research that lets manufacturers use less rare earth per unit; slow, never undone.",
            step=10.0,
        ),
        Lever(
            "recycling_subsidy_usd_per_kg",
            "Recycling subsidy",
            STANDING,
            0.0,
            50.0,
            "US$/kg recycled",
            0.0,
            "recycling_subsidy",
            "from the budget, per kg recycled",
            "Paid to recyclers for each kg they recover; recycling capacity grows when it pays.",
            step=1.0,
        ),
        Lever(
            "permit_months",
            "Months to permit a mine or plant",
            STANDING,
            0.0,
            float(cp.permit_months),
            "months",
            float(cp.permit_months),
            "permitting",
            "free",
            "Streamlined permitting: new projects start building sooner.",
            step=1.0,
            integer=True,
        ),
    ]
    for d in model.policy.active_disputes():
        if COUNTRIES[d.target] == country:
            out.append(
                Lever(
                    "concede",
                    f"Concede to {COUNTRIES[d.coercer]}'s demand ({d.demand or d.id})",
                    ONCE,
                    0.0,
                    1.0,
                    "0 = hold, 1 = concede",
                    0.0,
                    "concede",
                    "political",
                    "Give in: the dispute ends with a concession.",
                    step=1.0,
                    integer=True,
                )
            )
            break
    for d in model.policy.active_disputes():
        if COUNTRIES[d.coercer] == country:
            out.append(
                Lever(
                    "drop_dispute",
                    f"Drop the dispute with {COUNTRIES[d.target]}",
                    ONCE,
                    0.0,
                    1.0,
                    "0 = keep, 1 = drop",
                    0.0,
                    "end_dispute",
                    "political",
                    "Drop the demand without a concession.",
                    step=1.0,
                    integer=True,
                )
            )
            break
    return out


# ----------------------------------------------------------------------------- reading values


def _own(model, origin: str, etype: str, **params) -> list:
    out = []
    for m in model.policy.measures.values():
        if m.type != etype or m.origin != origin:
            continue
        if all(m.params.get(k) == v for k, v in params.items()):
            out.append(m)
    return out


def _heavy_only(m) -> bool:
    goods = m.params.get("goods")
    return goods is not None and tuple(goods) == ("heavy",)


def _matches(model, country: str, lever: Lever) -> list:
    """The state's own measures that a standing lever stands for."""
    name = lever.name
    if name.startswith("licensing_") and name != "licensing_all_heavy_approval":
        t = rival_of(model.scenario, country)
        return _own(model, country, "licensing", exporter=country, target=t)
    if name == "licensing_all_heavy_approval":
        return [m for m in _own(model, country, "licensing", target="all") if _heavy_only(m)]
    if name.startswith("embargo_"):
        return _own(
            model, country, "embargo", exporter=country, target=rival_of(model.scenario, country)
        )
    if name == "export_tax_rate":
        return _own(model, country, "export_tax", exporter=country)
    if name == "export_quota_cut":
        return _own(model, country, "export_quota", exporter=country)
    if name == "stockpile_target_days":
        return _own(model, country, "stockpile", country=country)
    if name == "recycling_subsidy_usd_per_kg":
        return _own(model, country, "recycling_subsidy", country=country)
    if name == "permit_months":
        return _own(model, country, "permitting", country=country)
    return []


def current_value(model, country: str, lever: Lever) -> float:
    """The lever's value in the model now (per-turn and once levers are 0 at a turn start)."""
    if lever.kind != STANDING:
        return 0.0
    c = COUNTRIES.index(country)
    if lever.instrument == "stockpile":
        return float(model.stockpile_target_days()[c])
    if lever.instrument == "recycling_subsidy":
        return float(model.recycling_subsidy()[c])
    if lever.instrument == "permitting":
        return float(model.permit_months()[c])
    ms = _matches(model, country, lever)
    if not ms:
        return lever.off
    if lever.instrument == "licensing":
        return float(min(m.params["approval_rate"] for m in ms))
    if lever.instrument == "embargo":
        return 1.0
    if lever.instrument == "export_tax":
        return float(max(m.params["rate"] for m in ms))
    if lever.instrument == "export_quota":
        base = export_base_t_per_year(model.scenario.country(country))
        t = min(m.params["t_per_year"] for m in ms)
        return float(min(max(1.0 - t / base, 0.0), 0.9))
    return lever.off


def lever_table(model, country: str) -> dict[str, dict]:
    """``{LEVER: {"value", "min", "max", "unit", ...}}`` for the API."""
    return {
        lv.name: lv.describe(round(current_value(model, country, lv), 6))
        for lv in menu(model.scenario, model, country)
    }


# ----------------------------------------------------------------------------- checking moves


def check_moves(model, country: str, moves: object) -> dict[str, float]:
    """Validate a team's moves against its menu; return them as floats.

    Raises:
        MoveError: naming the first unknown lever, non-number or out-of-range value, or the
            spending that exceeds the budget.
    """
    if not isinstance(moves, dict):
        raise MoveError('moves: expected an object {"LEVER": VALUE, ...}')
    levers = {lv.name: lv for lv in menu(model.scenario, model, country)}
    out: dict[str, float] = {}
    for key, value in moves.items():
        lv = levers.get(key)
        if lv is None:
            raise MoveError(
                f"moves.{key}: unknown lever for {country}; levers: {', '.join(levers)}"
            )
        rng = f"allowed {lv.min:g} to {lv.max:g} ({lv.unit})"
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise MoveError(f"moves.{key}: expected a number, got {value!r}; {rng}")
        v = float(value)
        if v < lv.min - 1e-9 or v > lv.max + 1e-9:
            raise MoveError(f"moves.{key}: {v:g} is out of range; {rng}")
        if lv.integer and not v.is_integer():
            raise MoveError(f"moves.{key}: expected a whole number, got {v:g}; {rng}")
        out[key] = min(max(v, lv.min), lv.max)
    spend = sum(out.get(k, 0.0) for k, lv in levers.items() if lv.kind == PER_TURN)
    budget_m = max(model.states[COUNTRIES.index(country)].budget_usd, 0.0) / MUSD
    if spend > budget_m + 1e-6:
        names = " + ".join(k for k, lv in levers.items() if lv.kind == PER_TURN)
        raise MoveError(
            f"moves: {names} = US$ {spend:,.1f} million exceeds the budget; "
            f"allowed 0 to {budget_m:,.1f} (US$ million)"
        )
    return out


# ----------------------------------------------------------------------------- moves -> actions


def to_actions(model, country: str, moves: dict[str, float]) -> list[dict]:
    """Turn a team's lever values into strategy actions (event tables, ``lift``, ``end_dispute``).

    Only levers that change something produce actions. The actions are applied by the model
    with the same code as scenario events (``RareEarthModel.apply_action``).
    """
    scn = model.scenario
    cp = scn.country(country)
    levers = {lv.name: lv for lv in menu(scn, model, country)}
    s = slug(country)
    actions: list[dict] = []
    for key, value in moves.items():
        lv = levers.get(key)
        if lv is None:
            continue
        if lv.kind == STANDING:
            if abs(current_value(model, country, lv) - value) < 1e-9:
                continue
            actions += [{"type": "lift", "id": m.id} for m in _matches(model, country, lv)]
            if abs(value - lv.off) < 1e-9:
                continue
            mid = f"wargame-{s}-{key}"
            t = rival_of(scn, country)
            table: dict
            if key.startswith("licensing_") and key != "licensing_all_heavy_approval":
                table = {"type": "licensing", "exporter": country, "target": t}
                table["approval_rate"] = value
            elif key == "licensing_all_heavy_approval":
                table = {"type": "licensing", "exporter": country, "target": "all"}
                table |= {"goods": ["heavy"], "approval_rate": value}
            elif key.startswith("embargo_"):
                table = {"type": "embargo", "exporter": country, "target": t}
                table["stages"] = ["concentrate", "oxide"]
            elif key == "export_tax_rate":
                table = {"type": "export_tax", "exporter": country, "rate": value}
            elif key == "export_quota_cut":
                base = export_base_t_per_year(cp)
                table = {"type": "export_quota", "exporter": country}
                table["t_per_year"] = round(base * (1.0 - value), 1)
            elif key == "stockpile_target_days":
                table = {"type": "stockpile", "country": country, "target_days": value}
            elif key == "recycling_subsidy_usd_per_kg":
                table = {"type": "recycling_subsidy", "country": country, "usd_per_kg": value}
            else:  # permit_months
                table = {"type": "permitting", "country": country}
                table["permit_months"] = int(value)
            actions.append({"id": mid, **table})
        elif lv.kind == PER_TURN and value > 0:
            usd = value * MUSD
            host = cp.rule_finance_host or country
            if key == "finance_mines_musd":
                actions.append(
                    {"type": "finance", "country": country, "host": host, "kind": "miner"}
                    | {"loan_usd": usd}
                )
            elif key == "finance_refineries_musd":
                actions.append(
                    {"type": "finance", "country": country, "host": host, "kind": "separator"}
                    | {"loan_usd": usd}
                )
            else:
                actions.append({"type": "substitution_rd", "country": country, "usd": usd})
        elif lv.kind == ONCE and value >= 0.5:
            if key == "concede":
                actions.append({"type": "concede", "country": country})
            else:
                for d in model.policy.active_disputes():
                    if COUNTRIES[d.coercer] == country:
                        actions.append({"type": "end_dispute", "id": d.id})
    return actions
