"""Measures in force: the policy state built from scenario events and strategy actions.

Events and actions are the same thing (an event table); this module keeps the ones in force
and turns them into per-item :class:`abm.market.Rules` for the month. It holds data only; the
model decides when measures start and end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from abm.constants import COUNTRIES, GOODS, ITEM_GOOD, ITEM_STAGE, STAGES, C, I
from abm.market import Rules

QUOTA_DEFAULT_STAGES = ("concentrate", "oxide")


def item_mask(goods=None, stages=None, default_stages=STAGES) -> np.ndarray:
    """(I,) bool: which traded items a measure covers."""
    goods = goods or GOODS
    stages = stages or default_stages
    g_ok = np.array([GOODS[g] in goods for g in ITEM_GOOD])
    s_ok = np.array([STAGES[s] in stages for s in ITEM_STAGE])
    return g_ok & s_ok


@dataclass
class Measure:
    """One measure in force."""

    id: str
    type: str
    params: dict
    start: int  # month index
    end: int | None  # last month index in force (None = open-ended)
    coercive: bool
    origin: str  # "scenario", a state's name (strategy), or "facilitator"
    mask: np.ndarray = field(default_factory=lambda: np.ones(I, dtype=bool))


@dataclass
class Dispute:
    """A demand from one state on another."""

    id: str
    coercer: int
    target: int
    tension: float
    start: int
    demand: str = ""
    conceded_month: int | None = None
    ended_month: int | None = None
    end: int | None = None  # last month of the dispute if the scenario dates its end

    @property
    def active(self) -> bool:
        """Still open (neither conceded nor ended)."""
        return self.conceded_month is None and self.ended_month is None


class PolicyState:
    """The measures in force and the disputes, as plain data."""

    def __init__(self):
        self.measures: dict[str, Measure] = {}
        self.disputes: dict[str, Dispute] = {}
        self.log: list[tuple[int, str, str]] = []  # (month, origin, text)
        # bumped whenever the measures in force change (add, remove, expire): read-outs that
        # depend only on them are built once per version (see memo) instead of every month
        self.version = 0
        self._memo: dict = {}
        self._memo_version = 0

    def memo(self, key, build):
        """``build()``, kept until the measures in force change (read-only arrays inside).

        The model asks for the same read-outs of the measures (stockpile targets, permits,
        subsidies...) several times a month and they change only when a measure starts or
        ends. ``key`` names the read-out (add the month if it depends on it). Arrays in the
        value are made read-only so that a caller cannot change the shared copy.
        """
        if self._memo_version != self.version:
            self._memo.clear()
            self._memo_version = self.version
        try:
            return self._memo[key]
        except KeyError:
            value = build()
            for a in value if isinstance(value, tuple) else (value,):
                if isinstance(a, np.ndarray):
                    a.flags.writeable = False
            self._memo[key] = value
            return value

    def add(self, m: Measure) -> None:
        """Put a measure in force (replacing one with the same id)."""
        if m.type in ("export_quota", "export_tax"):
            m.mask = item_mask(
                m.params.get("goods"),
                m.params.get("stages"),
                QUOTA_DEFAULT_STAGES if m.type == "export_quota" else STAGES,
            )
        elif m.type in ("embargo", "licensing"):
            m.mask = item_mask(m.params.get("goods"), m.params.get("stages"))
        self.measures[m.id] = m
        self.version += 1

    def remove(self, mid: str) -> Measure | None:
        """Take a measure out of force."""
        self.version += 1
        return self.measures.pop(mid, None)

    def of_type(self, *types: str) -> tuple[Measure, ...]:
        """Measures in force of the given types, in insertion order."""
        return self.memo(
            ("of_type", types), lambda: tuple(m for m in self.measures.values() if m.type in types)
        )

    def expire(self, month: int) -> list[Measure]:
        """Remove measures whose end has passed (and close dated disputes); return them."""
        for d in self.active_disputes():
            if d.end is not None and d.end < month:
                d.ended_month = month
                self.log.append((month, "scenario", f"dispute {d.id} ended"))
        gone = [m for m in self.measures.values() if m.end is not None and m.end < month]
        for m in gone:
            del self.measures[m.id]
        if gone:
            self.version += 1
        return gone

    def rules(self, month: int, import_demand: np.ndarray) -> list[Rules]:
        """Per-item export rules for the month.

        Args:
            month: current month index (for licensing delays).
            import_demand: (C, I) tonnes each country wants from abroad this month, used to
                split an exporter's tonnage quota across the items it covers.
        """
        quota, access, leaky, tax = self.rule_arrays(month, import_demand)
        return [Rules(quota[i], access[i], leaky[i], tax[i]) for i in range(I)]

    def rule_arrays(
        self, month: int, import_demand: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The rules of :meth:`rules` stacked over items.

        Returns:
            quota (I, C), access (I, C, C), leaky (I, C, C) and tax (I, C); the last three are
            read-only and shared between months while the measures stay the same.
        """
        quota = np.full((I, C), np.inf)
        for m in self.of_type("export_quota"):
            x = COUNTRIES.index(m.params["exporter"])
            others = np.ones(C, dtype=bool)
            others[x] = False
            want = import_demand[others].sum(axis=0) * m.mask
            tot = want.sum()
            share = want / tot if tot > 0 else m.mask / max(m.mask.sum(), 1)
            q = m.params["t_per_year"] / 12.0 * share
            quota[:, x] = np.where(m.mask, np.minimum(quota[:, x], q), quota[:, x])
        # access, leakage and taxes do not depend on demand, and on the month only through
        # which licences are still in their delay: kept until that or the measures change
        delayed = tuple(
            month - m.start < m.params.get("delay_months", 0) for m in self.of_type("licensing")
        )
        access, leaky, tax = self.memo(("access", delayed), lambda: self._access_rules(month))
        return quota, access, leaky, tax

    def _access_rules(self, month: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Access (I, C, C), leakage (I, C, C) and export tax (I, C) of the measures in force."""
        access = np.ones((I, C, C))
        leaky = np.zeros((I, C, C), dtype=bool)
        tax = np.zeros((I, C))
        for m in self.of_type("embargo"):
            x = COUNTRIES.index(m.params["exporter"])
            y = COUNTRIES.index(m.params["target"])
            lk = m.params.get("_leakage", 0.0)
            access[m.mask, x, y] = np.minimum(access[m.mask, x, y], lk)
            leaky[m.mask, x, y] = True
        for m in self.of_type("licensing"):
            x = COUNTRIES.index(m.params["exporter"])
            target = m.params.get("target", "all")
            ys = [i for i in range(C) if i != x] if target == "all" else [COUNTRIES.index(target)]
            delay = m.params.get("delay_months", 0)
            rate = 0.0 if month - m.start < delay else m.params["approval_rate"]
            for y in ys:
                access[m.mask, x, y] = np.minimum(access[m.mask, x, y], rate)
        for m in self.of_type("export_tax"):
            x = COUNTRIES.index(m.params["exporter"])
            tax[m.mask, x] = np.maximum(tax[m.mask, x], m.params["rate"])
        return access, leaky, tax

    def quota_t_per_year(self) -> np.ndarray:
        """(C,) export quota in force per exporter in t/yr (NaN where none; read-only)."""
        return self.memo("export_quota", self._quota_t_per_year)

    def _quota_t_per_year(self) -> np.ndarray:
        out = np.full(C, np.nan)
        for m in self.of_type("export_quota"):
            x = COUNTRIES.index(m.params["exporter"])
            out[x] = np.fmin(out[x], m.params["t_per_year"])
        return out

    def production_quota_t_per_year(self, month: int | None = None) -> np.ndarray:
        """(C,) mining quota per country in t/yr (inf where none).

        A quota with ``growth_per_year`` grows from its start month: ``t_per_year`` times
        ``(1 + growth) ** (months since start / 12)`` (``month`` is the current month index).
        Read-only; kept per month until the measures change (the model asks twice a month).
        """
        return self.memo(("production_quota", month), lambda: self._production_quota(month))

    def _production_quota(self, month: int | None) -> np.ndarray:
        out = np.full(C, np.inf)
        for m in self.of_type("production_quota"):
            c = COUNTRIES.index(m.params["country"])
            t = m.params["t_per_year"]
            growth = m.params.get("growth_per_year", 0.0)
            if growth and month is not None:
                t *= (1.0 + growth) ** (max(month - m.start, 0) / 12.0)
            out[c] = min(out[c], t)
        return out

    def heavy_ore_quota(self, month: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The heavy-rich ore part of each country's mining quota and the ore that counts.

        Returns (C,) t/yr (inf where none) and (C,) the Dy/Tb share of a mine's ore from which
        it counts as heavy-rich ore. A ``production_quota`` with ``heavy_ore_t_per_year`` caps
        what the country's miners whose ore holds at least ``heavy_ore_min_share`` (default
        0.01) of Dy/Tb mine; the other miners mine at most the rest of the total (China splits
        its mining quota into rock-type ore, mainly light, and ionic-clay ore, mainly medium
        and heavy rare earths). The part grows with the quota's ``growth_per_year``.
        """
        out = np.full(C, np.inf)
        share = np.full(C, 0.01)
        for m in self.of_type("production_quota"):
            t = m.params.get("heavy_ore_t_per_year")
            if t is None:
                continue
            c = COUNTRIES.index(m.params["country"])
            growth = m.params.get("growth_per_year", 0.0)
            if growth and month is not None:
                t *= (1.0 + growth) ** (max(month - m.start, 0) / 12.0)
            out[c] = min(out[c], t)
            share[c] = m.params.get("heavy_ore_min_share", 0.01)
        return out, share

    def restriction_matrix(self, month: int) -> np.ndarray:
        """(C, C) share of exporter x's normal exports to y that is blocked (max over items)."""
        r = np.zeros((C, C))
        for rules in self.rules(month, np.ones((C, I))):
            r = np.maximum(r, 1.0 - rules.access)
        np.fill_diagonal(r, 0.0)
        return r

    def active_disputes(self) -> list[Dispute]:
        """Open disputes."""
        return [d for d in self.disputes.values() if d.active]
