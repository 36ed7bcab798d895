"""Mesa's Boltzmann wealth model without a space: the reference workload for Mesa's own speed.

Written for these benchmarks after the example shipped with Mesa
(``mesa/examples/basic/boltzmann_wealth_model``), minus the grid, the moving and the
DataCollector: every agent with wealth above zero gives one unit to another agent drawn at random
with the model's generator, and the agents act in a fresh random order each step
(``self.agents.shuffle_do("step")``). It is the cheapest useful thing a Mesa agent can do, so it
measures what one Python method call per agent per step costs through Mesa's AgentSet.
"""

from __future__ import annotations

import mesa


class MoneyAgent(mesa.Agent):
    """An agent holding whole units of wealth; it starts with one."""

    def __init__(self, model: BoltzmannNoSpace, slot: int):
        super().__init__(model)
        self.slot = slot  # position in model.roster, so that "another agent" is one draw
        self.wealth = 1

    def step(self) -> None:
        if self.wealth > 0:
            roster = self.model.roster
            j = self.random.randrange(len(roster) - 1)  # the model's seeded random.Random
            other = roster[j + (j >= self.slot)]  # any agent but this one, equally likely
            other.wealth += 1
            self.wealth -= 1


class BoltzmannNoSpace(mesa.Model):
    """``n`` money agents and nothing else (no space, no data collection).

    ``roster`` is a plain list: indexing Mesa's AgentSet builds a list on every call, which would
    make a random draw cost O(n) and measure that instead of the model.
    """

    def __init__(self, n: int, seed: int = 0):
        if n < 2:
            raise ValueError("the Boltzmann model needs at least two agents")
        super().__init__(rng=seed)
        self.roster = [MoneyAgent(self, k) for k in range(n)]

    def step(self) -> None:
        self.agents.shuffle_do("step")

    def total_wealth(self) -> int:
        return sum(a.wealth for a in self.roster)
