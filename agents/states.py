"""States as Mesa agents: a budget, a stockpile, objectives and a strategy that picks levers."""

from __future__ import annotations

import mesa
import numpy as np

from abm.constants import GOODS
from agents.strategies import Strategy, make_strategy


class StateAgent(mesa.Agent):
    """A state. Its levers are applied by the model as measures; it holds money and stock.

    Attributes:
        index: country index.
        params: the country's scenario parameters.
        budget_usd: money available for policy (can go negative when scripted spending exceeds
            it; rule strategies stop spending at zero).
        stockpile_t: (G,) tonnes of oxide held by the state, per element group.
        strategy: the object that chooses actions.
    """

    def __init__(self, model, index: int, params, strategy: Strategy | None = None):
        super().__init__(model)
        self.index = index
        self.params = params
        self.name = params.name
        self.budget_usd = float(params.budget_usd)
        self.stockpile_t = np.array([params.stockpile_t[g] for g in GOODS], dtype=float)
        self.strategy = strategy if strategy is not None else make_strategy(params.strategy)
        if hasattr(self.strategy, "bind"):  # learners draw from the model's generator
            self.strategy.bind(model.rng, params.decision_every_months)
        self.spent_usd = 0.0
        self.last_payoff = 0.0

    def decides_this_month(self, month: int) -> bool:
        """Whether this is one of the state's decision months (a strategy may say otherwise)."""
        own = getattr(self.strategy, "decides_in", None)
        if own is not None:
            return own(month, self.params.decision_every_months)
        return month % self.params.decision_every_months == 0
