"""Strategies: given a state's observation, choose its actions for this decision period.

An action is an event table, exactly as in a scenario file (``{"type": "licensing", ...}``),
plus ``{"type": "lift", "id": ...}`` to take one of the state's own measures out of force.
The model validates and applies actions with the same code as scenario events, so anything a
strategy (or a human player) can do, a scenario can script, and the reverse.

Every strategy has ``decide(obs) -> list[dict]`` and ``learn(payoff) -> None``; scripted and
rule-based strategies ignore the payoff, learning strategies (agents/learning.py) use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from abm.scenario import ScenarioError

RULE_SHORTAGE_FILL = 0.75
"""A buyer state feels threatened when less than this share of some order was filled."""


@dataclass(frozen=True)
class DisputeView:
    """What a state knows about a dispute it is party to."""

    id: str
    coercer: str
    target: str
    tension: float
    months_open: int
    conceded: bool
    active: bool


@dataclass(frozen=True)
class Observation:
    """A state's read-only view of the world at a decision point."""

    country: str
    month: int
    date: str
    params: object  # CountryParams
    allow_coercion: bool
    budget_usd: float
    price_multiple: np.ndarray  # (I,) local price / start price
    fill: np.ndarray  # (I,) share of this country's orders served last month
    risk_of: np.ndarray  # (C,) mean perceived risk of this country's buyers per supplier
    import_share_from: np.ndarray  # (C,) share of this country's imports by origin
    pain: float  # lost output over the last 3 months as a share of RE-using output
    stockpile_target_days: float
    disputes: tuple[DisputeView, ...] = ()
    own_measures: tuple[str, ...] = ()
    forecast: Callable[[list[dict], int], float] | None = None
    """The state's payoff over N months if it takes these actions now (simulated on a copy of
    the world); None inside a forecast."""


def _frozen(cls, fields: dict):
    """An instance of the frozen dataclass ``cls`` built without its ``__init__``.

    A frozen dataclass sets each field through ``object.__setattr__``: an
    :class:`Observation` (16 fields) took about 6 us, five a month, against 1 us for filling
    the instance's ``__dict__``; the object is the same (equal, still frozen against
    assignment). ``fields`` must name every field (the model's observations do).
    """
    obj = object.__new__(cls)
    obj.__dict__.update(fields)
    return obj


def dispute_view(**fields) -> DisputeView:
    """A :class:`DisputeView` from all its fields, built as :func:`_frozen` does."""
    return _frozen(DisputeView, fields)


def observation(**fields) -> Observation:
    """An :class:`Observation` from all its fields, built as :func:`_frozen` does."""
    return _frozen(Observation, fields)


class Strategy:
    """Base class: no actions, no learning."""

    name = "base"
    needs_observation = True
    learns = False

    def decide(self, obs: Observation) -> list[dict]:
        """Return the actions for this decision period."""
        return []

    def learn(self, payoff: float) -> None:
        """Update from a realised payoff (no-op unless the strategy learns)."""


class ScriptedStrategy(Strategy):
    """Follows the scenario's timeline only: every measure comes from scenario events."""

    name = "scripted"
    needs_observation = False


@dataclass
class RuleStrategy(Strategy):
    """Threshold heuristics (all thresholds are scenario fields ``rule_*`` of the country).

    As a coercer in an open dispute: restrict the target (``rule_instrument`` at
    ``rule_approval_rate``) once tension reaches ``rule_restrict_tension``; after
    ``rule_escalate_after_months`` without concession, widen to licensing of heavy rare earths
    to every buyer; lift everything on concession or after ``rule_lift_after_months``.

    As a buyer: when the perceived risk of its main supplier reaches ``rule_risk_trigger`` or its
    orders go unfilled, raise the stockpile target to ``rule_stockpile_days``, finance new supply
    (``rule_finance_usd_per_year``, built in ``rule_finance_host``), subsidise recycling and fund
    substitution R&D, as far as its budget allows.
    """

    name: str = "rule"
    responded: bool = False
    _imposed: dict = field(default_factory=dict)

    def decide(self, obs: Observation) -> list[dict]:
        """Apply the thresholds to the observation."""
        p = obs.params
        actions: list[dict] = []
        for d in obs.disputes:
            if d.coercer != obs.country:
                continue
            base_id = f"rule-{obs.country}-{d.id}"
            esc_id = f"{base_id}-escalation"
            in_force = base_id in obs.own_measures
            escalated = esc_id in obs.own_measures
            done = (not d.active) or d.months_open >= p.rule_lift_after_months
            if done:
                actions += [
                    {"type": "lift", "id": i} for i in (base_id, esc_id) if i in obs.own_measures
                ]
                if d.active and d.months_open >= p.rule_lift_after_months:
                    actions.append({"type": "end_dispute", "id": d.id})
                continue
            if not obs.allow_coercion:
                continue
            goods = ["heavy"] if p.rule_heavy_only else ["light", "ndpr", "heavy"]
            if not in_force and d.tension >= p.rule_restrict_tension:
                act = {
                    "type": p.rule_instrument,
                    "id": base_id,
                    "exporter": obs.country,
                    "target": d.target,
                    "goods": goods,
                }
                if p.rule_instrument == "licensing":
                    act["approval_rate"] = p.rule_approval_rate
                actions.append(act)
            if (
                not escalated
                and p.rule_escalate_after_months > 0
                and d.months_open >= p.rule_escalate_after_months
            ):
                actions.append(
                    {
                        "type": "licensing",
                        "id": esc_id,
                        "exporter": obs.country,
                        "target": "all",
                        "goods": ["heavy"],
                        "approval_rate": max(p.rule_approval_rate, 0.5),
                    }
                )
        # array methods rather than np.argmax / np.min (their wrappers cost more than the work)
        top = int(obs.import_share_from.argmax()) if obs.import_share_from.sum() > 0 else 0
        threatened = (
            obs.risk_of[top] >= p.rule_risk_trigger or float(obs.fill.min()) < RULE_SHORTAGE_FILL
        )
        if threatened and obs.budget_usd > 0:
            if obs.stockpile_target_days < p.rule_stockpile_days:
                actions.append(
                    {
                        "type": "stockpile",
                        "id": f"rule-{obs.country}-stockpile",
                        "country": obs.country,
                        "target_days": p.rule_stockpile_days,
                    }
                )
            # per decision period: deciding every k months, a state spends k months' worth
            period = p.decision_every_months / 12.0
            per_period = p.rule_finance_usd_per_year * period
            if per_period > 0:
                host = p.rule_finance_host or obs.country
                actions.append(
                    {
                        "type": "finance",
                        "country": obs.country,
                        "host": host,
                        "kind": "miner",
                        "loan_usd": per_period,
                    }
                )
            if p.rule_recycling_subsidy_usd_per_kg > 0 and not self.responded:
                actions.append(
                    {
                        "type": "recycling_subsidy",
                        "id": f"rule-{obs.country}-recycling",
                        "country": obs.country,
                        "usd_per_kg": p.rule_recycling_subsidy_usd_per_kg,
                    }
                )
            if p.rule_rd_usd_per_year > 0:
                actions.append(
                    {
                        "type": "substitution_rd",
                        "country": obs.country,
                        "usd": p.rule_rd_usd_per_year * period,
                    }
                )
            self.responded = True
        return actions


class HumanStrategy(Strategy):
    """A state played by people (the classroom wargame): the team's submitted actions.

    The game engine hands over the actions a team submitted for a turn with :meth:`submit`;
    :meth:`decide` returns them at the turn's first decision and nothing for the rest of the
    turn. For a turn with no submission (an empty seat or a late team) the state is played by
    ``fallback``, the strategy its scenario configures, on that strategy's own decision months.

    Args:
        fallback: the scenario's strategy for this state.
    """

    name = "human"
    needs_observation = True

    def __init__(self, fallback: Strategy):
        self.fallback = fallback
        self.learns = fallback.learns
        self._pending: list[dict] | None = None
        self._turn_start: int | None = None

    def submit(self, month: int, actions: list[dict] | None) -> None:
        """Set the actions for the turn that starts at ``month`` (None: the fallback plays)."""
        self._turn_start = month
        self._pending = None if actions is None else list(actions)

    def decides_in(self, month: int, every: int) -> bool:
        """Whether the state decides in ``month`` (its turn start, or the fallback's cadence)."""
        if self._pending is not None:
            return month == self._turn_start
        return month % every == 0

    def decide(self, obs: Observation) -> list[dict]:
        """The team's actions at the start of its turn; the fallback's when it did not play."""
        if self._pending is None:
            return self.fallback.decide(obs)
        if obs.month != self._turn_start:
            return []
        actions, self._pending = self._pending, []
        return actions

    def learn(self, payoff: float) -> None:
        """Let a learning fallback keep learning from the state's realised payoffs."""
        self.fallback.learn(payoff)

    def bind(self, rng, every: int) -> None:
        """Pass the model's generator to a learning fallback."""
        if hasattr(self.fallback, "bind"):
            self.fallback.bind(rng, every)


def strategy_classes() -> dict[str, type[Strategy]]:
    """Every strategy a scenario can name."""
    from agents.learning import EWAStrategy, LookaheadStrategy, RothErevStrategy

    return {
        "scripted": ScriptedStrategy,
        "rule": RuleStrategy,
        "roth_erev": RothErevStrategy,
        "ewa": EWAStrategy,
        "lookahead": LookaheadStrategy,
    }


def make_strategy(name: str) -> Strategy:
    """Instantiate a strategy by its scenario name."""
    try:
        return strategy_classes()[name]()
    except KeyError:
        allowed = ", ".join(strategy_classes())
        raise ScenarioError(f"strategy: {name!r} is not available; allowed: {allowed}") from None
