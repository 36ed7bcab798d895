"""Learning strategies for states: modified Roth-Erev, EWA, and one-step lookahead.

All three choose from a small discrete menu of policy bundles (``menu_for``) on each decision
month and turn the choice into actions (``actions_for``), the same event tables a scenario or a
rule strategy uses. Payoffs are the state's realised payoff (``RareEarthModel.payoff``: its
objective weights over revenue, industry output, supply security, political gains and budget),
averaged over the months since the last decision.

References:
    Erev, I. and Roth, A. E. (1998). Predicting how people play games: reinforcement learning in
    experimental games with unique, mixed strategy equilibria. American Economic Review 88(4).
    Nicolaisen, J., Petrov, V. and Tesfatsion, L. (2001). Market power and efficiency in a
    computational electricity market with discriminatory double-auction pricing. IEEE
    Transactions on Evolutionary Computation 5(5) (the "modified" Roth-Erev update).
    Camerer, C. and Ho, T.-H. (1999). Experience-weighted attraction learning in normal form
    games. Econometrica 67(4).
"""

from __future__ import annotations

import numpy as np

from agents.strategies import Observation, Strategy

COERCER_MENU = ("hold", "license_target", "embargo_target", "license_heavy_all")
"""A coercer in an open dispute: no restriction, license the target, embargo it, or license
heavy rare earths to every buyer."""
BUYER_MENU = ("hold", "stockpile", "finance", "recycle_and_substitute")
"""Every other state: nothing new, raise the stockpile, finance new supply, or fund recycling
and substitution."""


def coercing_dispute(obs: Observation):
    """The open dispute in which this state is the coercer (None if none or coercion is off)."""
    if not obs.allow_coercion:
        return None
    for d in obs.disputes:
        if d.coercer == obs.country and d.active:
            return d
    return None


def menu_for(obs: Observation) -> tuple[str, ...]:
    """The menu this state chooses from now."""
    return COERCER_MENU if coercing_dispute(obs) is not None else BUYER_MENU


def actions_for(choice: str, obs: Observation, months: int) -> list[dict]:
    """Event tables that carry out a menu choice for ``months`` months (the decision period)."""
    p, c = obs.params, obs.country
    rid = f"learn-{c}-restrict"
    d = coercing_dispute(obs)
    if d is not None:  # the coercer's menu: one restriction measure, replaced or lifted
        if choice == "license_target":
            return [
                {
                    "type": "licensing",
                    "id": rid,
                    "exporter": c,
                    "target": d.target,
                    "approval_rate": p.rule_approval_rate,
                }
            ]
        if choice == "embargo_target":
            return [{"type": "embargo", "id": rid, "exporter": c, "target": d.target}]
        if choice == "license_heavy_all":
            return [
                {
                    "type": "licensing",
                    "id": rid,
                    "exporter": c,
                    "target": "all",
                    "goods": ["heavy"],
                    "approval_rate": max(p.rule_approval_rate, 0.5),
                }
            ]
        return [{"type": "lift", "id": rid}] if rid in obs.own_measures else []
    actions: list[dict] = []
    if rid in obs.own_measures:  # a coercer whose dispute closed stops restricting
        actions.append({"type": "lift", "id": rid})
    if choice == "hold" or obs.budget_usd <= 0:
        return actions
    if choice == "stockpile":
        days = max(p.rule_stockpile_days, obs.stockpile_target_days)
        actions.append(
            {"type": "stockpile", "id": f"learn-{c}-stockpile", "country": c, "target_days": days}
        )
    elif choice == "finance" and p.rule_finance_usd_per_year > 0:
        actions.append(
            {
                "type": "finance",
                "country": c,
                "host": p.rule_finance_host or c,
                "kind": "miner",
                "loan_usd": p.rule_finance_usd_per_year * months / 12,
            }
        )
    elif choice == "recycle_and_substitute":
        if p.rule_recycling_subsidy_usd_per_kg > 0:
            actions.append(
                {
                    "type": "recycling_subsidy",
                    "id": f"learn-{c}-recycling",
                    "country": c,
                    "usd_per_kg": p.rule_recycling_subsidy_usd_per_kg,
                }
            )
        if p.rule_rd_usd_per_year > 0:
            actions.append(
                {
                    "type": "substitution_rd",
                    "country": c,
                    "usd": p.rule_rd_usd_per_year * months / 12,
                }
            )
    return actions


class _MenuLearner(Strategy):
    """Shared bookkeeping: one propensity vector per menu, payoffs averaged over a period."""

    needs_observation = True
    learns = True

    def __init__(self, rng: np.random.Generator | None = None, period: int = 3):
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.period = period
        self.state: dict[tuple, np.ndarray] = {}
        self.last: tuple[tuple, int] | None = None
        self._sum = 0.0
        self._n = 0
        self._lo, self._hi = np.inf, -np.inf

    def bind(self, rng: np.random.Generator, period: int) -> None:
        """Give the strategy the model's generator and its decision period (months)."""
        self.rng, self.period = rng, period

    def learn(self, payoff: float) -> None:
        """Accumulate this month's payoff toward the current choice."""
        self._sum += payoff
        self._n += 1

    def _scaled(self, x: float) -> float:
        """Payoff mapped to [0, 1] by the range seen so far (reinforcement needs x >= 0)."""
        self._lo, self._hi = min(self._lo, x), max(self._hi, x)
        return 0.5 if self._hi - self._lo < 1e-12 else (x - self._lo) / (self._hi - self._lo)

    def decide(self, obs: Observation) -> list[dict]:
        """Update from the period just ended, then choose from the current menu."""
        menu = menu_for(obs)
        if self.last is not None and self._n > 0:
            key, j = self.last
            self.update(key, j, self._scaled(self._sum / self._n))
        self._sum, self._n = 0.0, 0
        j = self.choose(menu)
        self.last = (menu, j)
        return actions_for(menu[j], obs, self.period)

    def probabilities(self, menu: tuple[str, ...]) -> np.ndarray:
        """Choice probabilities for a menu."""
        raise NotImplementedError

    def choose(self, menu: tuple[str, ...]) -> int:
        """Draw a choice with the model's generator."""
        p = self.probabilities(menu)
        return int(self.rng.choice(len(menu), p=p))

    def update(self, menu: tuple[str, ...], j: int, payoff: float) -> None:
        """Learn from the payoff of choice ``j``."""
        raise NotImplementedError


class RothErevStrategy(_MenuLearner):
    """Modified Roth-Erev reinforcement (Erev and Roth 1998; Nicolaisen et al. 2001).

    Propensities ``q_j`` start at ``q0``. After choice ``k`` earns scaled payoff ``pi``:
    ``q_j <- (1 - phi) q_j + E_j`` with ``E_k = pi (1 - eps)`` and, for ``j != k``,
    ``E_j = q_j eps / (M - 1)`` (the modification keeps unchosen propensities from vanishing
    when payoffs are zero). Choice probability ``p_j = q_j / sum(q)``. ``phi`` is recency
    (forgetting), ``eps`` experimentation, ``M`` the menu size.
    """

    name = "roth_erev"

    def __init__(
        self, rng=None, period: int = 3, phi: float = 0.1, eps: float = 0.2, q0: float = 1.0
    ):
        super().__init__(rng, period)
        self.phi, self.eps, self.q0 = phi, eps, q0

    def _q(self, menu):
        return self.state.setdefault(menu, np.full(len(menu), self.q0))

    def probabilities(self, menu):
        """``q / sum(q)``."""
        q = self._q(menu)
        return q / q.sum()

    def update(self, menu, j, payoff):
        """Modified Roth-Erev propensity update."""
        q = self._q(menu)
        m = len(menu)
        e = q * self.eps / max(m - 1, 1)
        e[j] = payoff * (1.0 - self.eps)
        q[:] = np.maximum((1.0 - self.phi) * q + e, 1e-9)


class EWAStrategy(_MenuLearner):
    """Experience-weighted attraction (Camerer and Ho 1999).

    Experience ``N <- rho N + 1``; attractions
    ``A_j <- (phi N_old A_j + (delta + (1 - delta) [j = k]) pi_j) / N``; choice by logit,
    ``p_j ~ exp(lambda A_j)``. The payoff of an unchosen action ``pi_j`` is not observed
    here: it is estimated by the last payoff that action earned when chosen (0 if never),
    so ``delta`` weighs these estimates. ``delta = 0`` gives cumulative reinforcement.
    """

    name = "ewa"

    def __init__(
        self,
        rng=None,
        period: int = 3,
        phi: float = 0.9,
        delta: float = 0.3,
        rho: float = 0.9,
        lam: float = 4.0,
    ):
        super().__init__(rng, period)
        self.phi, self.delta, self.rho, self.lam = phi, delta, rho, lam
        self.n_exp: dict[tuple, float] = {}
        self.seen: dict[tuple, np.ndarray] = {}

    def _a(self, menu):
        return self.state.setdefault(menu, np.zeros(len(menu)))

    def probabilities(self, menu):
        """Logit of attractions."""
        z = self.lam * self._a(menu)
        w = np.exp(z - z.max())
        return w / w.sum()

    def update(self, menu, j, payoff):
        """EWA attraction and experience update."""
        a = self._a(menu)
        seen = self.seen.setdefault(menu, np.zeros(len(menu)))
        seen[j] = payoff
        n_old = self.n_exp.get(menu, 1.0)
        n_new = self.rho * n_old + 1.0
        weight = np.full(len(menu), self.delta)
        weight[j] = 1.0
        a[:] = (self.phi * n_old * a + weight * seen) / n_new
        self.n_exp[menu] = n_new


class LookaheadStrategy(Strategy):
    """Bounded foresight: simulate a copy of the world a few months ahead for each choice.

    On each decision month the state asks the model (``Observation.forecast``) for its payoff
    over ``horizon`` months after each menu choice, other states doing nothing new in the
    copies, and takes the best (ties: the first in the menu). Inside a forecast copy it holds.
    """

    name = "lookahead"
    needs_observation = True
    learns = False

    def __init__(self, horizon: int = 3, period: int = 3):
        self.horizon, self.period = horizon, period

    def bind(self, rng: np.random.Generator, period: int) -> None:
        """Take the decision period (the generator is not needed)."""
        self.period = period

    def decide(self, obs: Observation) -> list[dict]:
        """Forecast each choice and act on the best."""
        if obs.forecast is None:
            return []
        menu = menu_for(obs)
        scores = [obs.forecast(actions_for(ch, obs, self.period), self.horizon) for ch in menu]
        best = int(np.argmax(scores))
        return actions_for(menu[best], obs, self.period)
