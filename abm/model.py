"""The rare-earth world model: a Mesa model whose ``step`` is the monthly phase script.

``RareEarthModel.step`` reads as DESIGN.md section 3 and docs/ODD.md ("Process overview and
scheduling") line for line:

1. scheduled events apply (measures start and end);
2. states observe and, on their decision months, choose policies through their strategies;
3. producers set output, idle or restart, and advance or start capacity projects;
4. manufacturers, processors and stockpiles set orders;
5. the market clears every item across countries under the export rules in force, and prices
   adjust;
6. settlement moves goods and money, and checks conservation;
7. learning: risk perception, expectations, losses, substitution, recycling, disputes;
8. data collection.
"""

from __future__ import annotations

import copy
import ctypes
import functools
import math
import sys
from dataclasses import dataclass

import mesa
import numpy as np
from threadpoolctl import ThreadpoolController

from abm.constants import (
    CHINA,
    CONC,
    COUNTRIES,
    GOODS,
    ITEM_GOOD,
    ITEMS,
    KIND_BY_NAME,
    MAG_HT,
    MAG_STD,
    OXIDE,
    SECTORS,
    C,
    FirmKind,
    G,
    I,
)
from abm.engine import kernels as engine_kernels
from abm.engine import resolve as resolve_engine
from abm.market import (
    KG_PER_T,
    Clearing,
    Contracts,
    arbitrage_links,
    arbitrage_pull,
    clear_items,
    stacked,
)
from abm.outputs import record_month
from abm.policy import Dispute, Measure, PolicyState
from abm.recorder import Recorder
from abm.scenario import Event, Scenario, month_index, parse_event, parse_month
from agents.firms import (
    SUPPLY_MARGIN_BAND,
    FirmAgent,
    build_population,
    country_item_use,
    output_composition,
    output_value_usd_per_kg,
    supply_response,
    value_coefficients,
)
from agents.states import StateAgent
from agents.strategies import Observation, ScriptedStrategy, dispute_view, observation

PROBE_SHARE = 0.05
"""Floor on a processor's expected sales, as a share of its capacity."""
RATE_ADJUST = 0.2
"""Share of the gap to its target run rate a producer closes each month (adjustment costs)."""
SALES_EXPECTATION_SPEED = 0.3
"""Weight of this month's sales in a producer's expected sales."""
HOLD_LIMIT_MONTHS = 6.0
"""A miner keeps at most this many months of a co-product it cannot sell; the rest is tailings."""
_NO_BLOCKS = np.empty(0, dtype=np.intp)
"""No block starts: the settlement kernel then leaves the sums by country to ``sum_makers``."""
CAPITAL_RECOVERY_PER_YEAR = 0.15
"""Annual capital charge on capex (about 10 years at 8%), used in full-cost margins."""

STANDING = {
    "export_quota",
    "embargo",
    "licensing",
    "export_tax",
    "production_quota",
    "tech_export_ban",
    "offtake",
    "stockpile",
    "price_floor",
    "permitting",
    "recycling_subsidy",
}
KIND_CODES = ("miner", "separator", "magnet_maker", "recycler")
_NO_CONTRACTS = (Contracts.empty(), np.zeros(0, dtype=int))
_DERIVED = np.array([*CONC, MAG_STD, MAG_HT])  # items priced by anchor and premium
_EMPTY = np.zeros(0)  # an empty array argument of a kernel (an input it does not need)


@functools.cache
def _blas() -> ThreadpoolController:
    """The process's BLAS libraries (found once: the scan takes a few ms)."""
    return ThreadpoolController()


MALLOC_KEEP_BYTES = 128 * 2**20
"""Freed heap memory the C allocator may keep for reuse instead of returning it (see below)."""
MALLOC_MMAP_BYTES = 32 * 2**20
"""Blocks at least this large get their own memory map (glibc's largest automatic setting)."""


@functools.cache
def keep_freed_memory() -> bool:
    """Let glibc's allocator reuse freed memory instead of returning it to the system at once.

    A month allocates hundreds of short-lived per-firm temporaries of 0.1-6 MB. With glibc's
    defaults, freeing them shrinks the heap (or unmaps them) and the next allocation takes
    fresh pages from the kernel, zero-filled one page fault at a time: at 10,000 firms about
    460 page faults and 1.2 ms of system time a month, at 100,000 firms 4,700 and 10 ms. With
    the heap kept (up to ``MALLOC_KEEP_BYTES`` of free space, maps only from
    ``MALLOC_MMAP_BYTES``) a month takes a handful. Results do not change. Process-wide and
    set once, when the first model is built (not on import); a no-op off glibc.

    Returns:
        Whether the settings were applied.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3  # glibc's malloc.h
    ok = mallopt(m_mmap_threshold, MALLOC_MMAP_BYTES)
    ok &= mallopt(m_trim_threshold, MALLOC_KEEP_BYTES)
    ok &= mallopt(m_top_pad, MALLOC_MMAP_BYTES)
    return bool(ok)


class one_blas_thread:  # noqa: N801 (used like a function: ``with one_blas_thread():``)
    """A context in which BLAS runs on one thread (the user's setting is restored after).

    The per-firm matrix products have a tiny inner dimension (8 items, 3 groups): split over
    threads they gain nothing, and on a busy machine the second thread waits for a core while
    the first spins (at 100,000 firms a month took 3 times the CPU time with OpenBLAS's default
    of one thread per core). One thread gives the same results bit for bit. Entering costs a
    few microseconds (threadpoolctl's own ``limit`` context takes about 15 us).
    """

    def __enter__(self) -> one_blas_thread:
        self._saved = []
        for lib in _blas().lib_controllers:
            if lib.user_api == "blas":
                n = lib.num_threads
                if n != 1:
                    lib.set_num_threads(1)
                    self._saved.append((lib, n))
        return self

    def __exit__(self, *exc) -> None:
        for lib, n in self._saved:
            lib.set_num_threads(n)


def _typed(values: list) -> tuple:
    """A list's values with their types, as a hashable key (see ``_action_event``)."""
    return tuple((type(x), x) for x in values)


class _Rows:
    """A few per-firm arrays of one block of firms, by name (views, no copies)."""

    def __init__(self, **arrays):
        self.__dict__.update(arrays)


class ConservationError(RuntimeError):
    """Goods or money appeared or vanished in settlement."""


class ScenarioRuntimeError(ValueError):
    """A scenario is valid on its own but cannot run (e.g. an action names a missing firm)."""


@dataclass
class MonthFlows:
    """What happened in one month, kept for outputs and learning."""

    production: np.ndarray  # (C, I) t produced (recycling excluded)
    recycled: np.ndarray  # (C, G) t
    consumption: np.ndarray  # (C, G) t REO consumed by manufacturers
    clearings: list  # per item Clearing
    lost_usd: np.ndarray  # (C, S)
    revenue: np.ndarray  # (C,) US$ received by sellers
    restriction: np.ndarray  # (C, C)


class RareEarthModel(mesa.Model):
    """States and firms trading rare earths month by month.

    Args:
        scenario: a validated scenario.
        seed: random seed (defaults to the scenario's); seed 0 is a seed.
        run: label written in the ``run`` column (``scenario`` or ``counterfactual``).
        engine: ``auto``, ``numpy`` or ``numba`` (see :mod:`abm.engine`; the same results on
            each); None reads ``LANTHANIDE_ENGINE``.
    """

    def __init__(
        self,
        scenario: Scenario,
        seed: int | None = None,
        run: str = "scenario",
        engine: str | None = None,
    ):
        seed = scenario.seed if seed is None else int(seed)
        super().__init__(rng=seed)
        keep_freed_memory()
        self.seed_value = seed
        self.scenario = scenario
        self.run_label = run
        self.start = scenario.start_ym
        self.month = 0
        self.horizon = scenario.months
        mk, fb = scenario.market, scenario.firm_behaviour
        self.mk, self.fb = mk, fb
        self.p0 = np.array([mk.prices_usd_per_kg[f"{g}_{s}"] for g, s in ITEMS])
        self.price = np.repeat(self.p0[:, None], C, axis=1)  # (I, C)
        self.exp_price = self.price.copy()  # firms' adaptive price expectations
        self.premium = np.zeros((I, C))  # log scarcity premium over the cost-linked anchor
        self._calibrate_anchors()
        self.use_c = country_item_use(scenario)  # (C, I) per year at intensity 1
        self.growth = np.array([cp.demand_growth_per_year for cp in scenario.countries])
        self._growth_offset = np.array(
            [[cp.demand_growth_offset_per_year[g] for g in GOODS] for cp in scenario.countries]
        )  # (C, G) extra growth per element group
        self.demand_mult = np.ones((C, G))
        self.reo_per_item = self._reo_content()  # (I, G) t REO of each good per t of item

        self.firms, names = build_population(scenario, self.rng)
        self.engine = resolve_engine(engine, self.firms.n)
        # compiled kernels for the per-firm passes (None: numpy does them; the same results)
        self._k = engine_kernels() if self.engine == "numba" else None
        self.firm_agents = [FirmAgent(self, r, nm) for r, nm in enumerate(names)]
        self.states = [StateAgent(self, c, cp) for c, cp in enumerate(scenario.countries)]
        self.policy = PolicyState()
        self.recorder = Recorder(run, seed)
        self.dates: list[str] = []

        self.fill = np.ones((C, I))
        self.supplier_share = np.zeros((I, C, C))  # [item, buyer, origin]
        self.lost_hist: list[np.ndarray] = []
        self.restr_hist: list[np.ndarray] = []  # restriction matrix of each month
        self.bankruptcies = np.zeros(C)
        self.finance_pool = np.zeros((C, len(KIND_CODES)))
        self.rd_pressure = np.zeros((C, G))  # substitution pressure from state R&D
        self.restart_due = np.zeros(self.firms.n)
        self.external_in = 0.0
        self.external_out = 0.0
        self.concession: tuple[str, int] | None = None
        self.flows: MonthFlows | None = None
        self.forecasting = False  # True in a copy made by fork() for a lookahead
        # separators can process any mix: they start on the world's mix of oxide use
        oxide_use = (self.use_c @ self.reo_per_item).sum(axis=0)
        if oxide_use.sum() > 0:
            sep = self.firms.kind == FirmKind.SEPARATOR
            self.firms.basket[sep] = oxide_use / oxide_use.sum()
        self.comp = output_composition(self.firms, mk)
        self._capex = self._capex_per_tpy()  # US$ per t/yr of capacity, per firm (fixed)
        self._flat_index: dict[tuple, np.ndarray] = {}
        # firms come in two blocks: producers (rows < P) and manufacturers (rows >= P)
        kinds = self.firms.kind
        self.P = int((kinds != FirmKind.MANUFACTURER).sum())
        if (kinds[: self.P] == FirmKind.MANUFACTURER).any():
            raise RuntimeError("firm population must list producers before manufacturers")
        self.producers = slice(0, self.P)
        self.makers = slice(self.P, self.firms.n)
        # (C, P) 0/1 matrix of producers' home countries: a grouped sum over producers is one
        # small matrix product (producers are not in country order, manufacturers are)
        self._onehot_pr = np.zeros((C, self.P))
        self._onehot_pr[self.firms.country[: self.P], np.arange(self.P)] = 1.0
        m_country = self.firms.country[self.makers]
        self._maker_rows = [np.flatnonzero(m_country == c) for c in range(C)]
        # home countries as index arrays for np.take (faster than fancy indexing, same values)
        self._c_all = self.firms.country.astype(np.intp)
        self._c_pr = self._c_all[self.producers]
        self._c_mf = self._c_all[self.makers]
        # each country's manufacturers as a slice when they are contiguous (as built)
        self._maker_blocks = [
            slice(int(r[0]), int(r[-1]) + 1) if r.size and r[-1] - r[0] + 1 == r.size else r
            for r in self._maker_rows
        ]
        self._good_of_item = np.array([self._intensity_good(i) for i in range(I)])
        self._sell_mask = self._seller_mask()
        self._risk_buyer = (kinds != FirmKind.MINER).astype(float)
        self._must_run = np.array([cp.must_run_share for cp in scenario.countries])
        # masks by kind, fixed for the run (a firm's kind and home country never change)
        k_pr = kinds[: self.P]
        self._pr_miner = k_pr == FirmKind.MINER
        self._pr_sep = k_pr == FirmKind.SEPARATOR
        self._pr_mag = k_pr == FirmKind.MAGNET_MAKER
        self._pr_rec = k_pr == FirmKind.RECYCLER
        self._pr_processing = self._pr_sep | self._pr_mag
        self._pr_rec_rows = np.flatnonzero(self._pr_rec)
        self._pr_rec_country = self.firms.country[: self.P][self._pr_rec_rows]
        self._off_c = 1 - np.eye(C)  # (C, C) 1 off the diagonal
        self._pr_run_floor = self._must_run[self.firms.country[: self.P]] * self._pr_miner
        self._kind_n = kinds.astype(int)  # kind codes as plain ints (fixed)
        self._kind_pr = self._kind_n[: self.P]
        self._kind_pool = np.clip(self._kind_pr, 0, len(KIND_CODES) - 1)  # finance pool column
        self._processing_n = (kinds == FirmKind.SEPARATOR) | (kinds == FirmKind.MAGNET_MAKER)
        self._miner_n = kinds == FirmKind.MINER
        self._build_by_kind = np.array([fb.build_months[k] for k in KIND_CODES])
        self._state_rows: dict[tuple, np.ndarray] = {}  # (kind, country) masks, built on use
        self._is_producer = kinds != FirmKind.MANUFACTURER
        self._is_recycler = kinds == FirmKind.RECYCLER
        self._can_shut = (kinds == FirmKind.MINER) | self._is_recycler
        self._must_run_n = (self._must_run[self.firms.country] > 0) & (kinds == FirmKind.MINER)
        self._mine_build = np.array([cp.mine_build_months for cp in scenario.countries])
        # manufacturers use only the items from the first one any of them uses (oxides and
        # magnets): their per-firm arrays cover those columns (the others stay 0 for them)
        mf = self.makers
        used = np.flatnonzero(self.firms.use_tpy[mf].any(axis=0))
        self._mj = slice(int(used[0]) if used.size else 0, I)
        # the intensity index that scales each item's use: a high-temperature magnet follows
        # Dy/Tb, or NdPr where Dy/Tb thrifting acts on the magnet's recipe instead
        intensity_good = self._good_of_item.copy()
        if fb.heavy_thrift_in_magnets:
            intensity_good[MAG_HT] = GOODS.index("ndpr")
        self._mj_good = intensity_good[self._mj]
        # each country's manufacturers are one contiguous block (as built): grouped sums over
        # them are np.add.reduceat over the block starts (bincount when they are not)
        self._mf_reduce = self._maker_block_starts()
        self._mf_spans: list[tuple[int, tuple[int, int]]] = []
        if self._mf_reduce is not None:
            cs, starts = self._mf_reduce
            stops = [*starts[1:], self.firms.n - self.P]
            self._mf_spans = [
                (int(c), (int(a), int(b))) for c, a, b in zip(cs, starts, stops, strict=True)
            ]
        # fixed per-manufacturer quantities used by the reporters
        self.maker_use_reo = self.by_country(self.firms.use_tpy[mf] @ self.reo_per_item / 12.0, mf)
        self.maker_weight = self.firms.use_tpy[mf].sum(axis=1)
        self._monthly_use = np.ascontiguousarray(self.firms.use_tpy[mf, self._mj] / 12.0)
        self.makers_per_country = self.by_country(np.ones(self.maker_weight.size), mf)
        self.maker_weight_by_country = self.by_country(self.maker_weight, mf)
        self._risk_buyers_by_country = self.by_country(self._risk_buyer)  # fixed
        # US$ of output lost per t of REO short, by sector, per manufacturer (fixed)
        self._lost_weight = (
            KG_PER_T * self.firms.value_per_kg[mf][:, None] * self.firms.sector_mix[mf]
        )
        # perceived risk of each supplier country held by a country's buyers (every non-miner),
        # and manufacturers' rare-earth intensity per element group: per home country, as all
        # the country's firms start equal and take the same shocks and cuts (see FirmState)
        self.risk_c = np.zeros((C, C))
        self._risk_version = 0  # bumped whenever risk_c changes (risk_by_country caches on it)
        self.intensity_c = np.ones((C, G))
        # substitution per element group (G,): a group's own rate and floor, or the common
        # substitution_rate_per_month and substitution_floor where the group has none (-1)
        fb = self.fb
        rate_g = np.array([fb.substitution_rate_by_group[g] for g in GOODS])
        floor_g = np.array([fb.substitution_floor_by_group[g] for g in GOODS])
        self._substitution_rate = np.where(rate_g < 0, fb.substitution_rate_per_month, rate_g)
        self._substitution_floor = np.where(floor_g < 0, fb.substitution_floor, floor_g)
        self._reo_total = self.reo_per_item.sum(axis=1)
        self._ones_n = np.ones(self.firms.n)
        self._init_stocks()
        # entrant learning: firms that start as prospects (or come online later) learn by doing
        self._entrant = self.firms.prospect.copy()
        self._cum_units = np.zeros(self.firms.n)  # t of output since first output
        self._cost0 = np.zeros(self.firms.n)  # unit cost at first output
        self._state_headroom = np.array(
            [cp.state_capacity_headroom for cp in scenario.countries], dtype=float
        )
        self._sep_headroom = np.array(
            [cp.state_separation_headroom for cp in scenario.countries], dtype=float
        )
        self._conc_imports = np.full(C, np.nan)  # t/yr of concentrate imported, 12-month mean

    # ------------------------------------------------------------------ set-up helpers

    def _maker_block_starts(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(countries, first rows) of the manufacturers' country blocks, if they tile the block."""
        cs, starts, at = [], [], 0
        blocks = sorted(
            (b.start, c, b.stop) for c, b in enumerate(self._maker_blocks) if isinstance(b, slice)
        )
        if sum(r.size for r in self._maker_rows) != self.firms.n - self.P:
            return None
        for start, c, stop in blocks:
            if start != at:
                return None
            cs.append(c)
            starts.append(start)
            at = stop
        if at != self.firms.n - self.P or not starts:
            return None
        return np.array(cs, dtype=np.intp), np.array(starts, dtype=np.intp)

    def sum_makers(self, x: np.ndarray) -> np.ndarray:
        """Sum manufacturers' values by home country: (M,) -> (C,), (M, K) -> (C, K).

        The same sums as ``by_country(x, self.makers)`` (added in another order: each
        country's block is summed by ``np.add.reduceat``, deterministic and in row order).
        """
        if self._mf_reduce is None:
            return self.by_country(x, self.makers)
        cs, starts = self._mf_reduce
        out = np.zeros((C, *x.shape[1:]))
        out[cs] = np.add.reduceat(x, starts, axis=0)
        return out

    def sum_makers_weighted(self, w: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``sum_makers(w[:, None] * x)`` for (M,) weights and (M, K) values: (C, K).

        One matrix-vector product per country block (no (M, K) temporary).
        """
        if self._mf_reduce is None:
            return self.by_country(w[:, None] * x, self.makers)
        out = np.zeros((C, x.shape[1]))
        for c, (a, b) in self._mf_spans:
            out[c] = w[a:b] @ x[a:b]
        return out

    def firm_risk(self) -> np.ndarray:
        """(N, C) perceived risk of each supplier country, per firm (miners hold none)."""
        return np.take(self.risk_c, self._c_all, axis=0) * self._risk_buyer[:, None]

    def firm_intensity(self) -> np.ndarray:
        """(N, G) rare-earth use per unit output, per firm (1 for producers)."""
        out = np.ones((self.firms.n, G))
        out[self.makers] = np.take(self.intensity_c, self._c_mf, axis=0)
        return out

    def by_country(self, x: np.ndarray, rows: slice | None = None) -> np.ndarray:
        """Sum per-firm values by home country: (n,) -> (C,), (n, K) -> (C, K).

        ``rows`` is the block of firms ``x`` covers (``self.producers``, ``self.makers`` or all).
        One ``np.bincount`` over a flat (country, column) index: deterministic and fast.
        """
        rows = rows or slice(0, self.firms.n)
        if rows == self.producers:
            return self._onehot_pr @ x
        country = self.firms.country[rows]
        if x.ndim == 1:
            return np.bincount(country, weights=x, minlength=C)
        k = x.shape[1]
        key = (k, rows.start, rows.stop)
        idx = self._flat_index.get(key)
        if idx is None:
            idx = (country.astype(np.int64)[:, None] * k + np.arange(k)).ravel()
            self._flat_index[key] = idx
        return np.bincount(idx, weights=x.ravel(), minlength=C * k).reshape(C, k)

    def _calibrate_anchors(self) -> None:
        """Solve the separation spread and magnet markup from the start prices.

        The conversion cost is the coercer's (the price-setting magnet maker, China by default),
        so the start prices are an equilibrium of the anchors.
        """
        mk = self.mk
        p = self.p0
        # concentrate sells for a payable share of the oxide it contains (at the start prices)
        self._payable = np.array(
            [min(p[CONC[g]] / (mk.separation_yield * p[OXIDE[g]]), 1.0) for g in range(G)]
        )
        setter = self.scenario.country(self.scenario.coercer)
        self._conversion = setter.magnet_cost_usd_per_kg
        self._magnet_markup = np.zeros(2)
        for j, grade in enumerate(("ndpr_magnet", "heavy_magnet")):
            cost = (
                mk.magnet_ndpr_t_per_t[grade] * p[4]
                + mk.magnet_heavy_t_per_t[grade] * p[5]
                + self._conversion
            )
            self._magnet_markup[j] = p[MAG_STD + j] / cost
        # the anchors' fixed coefficients, as columns: payable share x separation yield per
        # concentrate; NdPr and Dy/Tb oxide per t of each magnet grade
        grades = ("ndpr_magnet", "heavy_magnet")
        self._anchor_coef = (
            (self._payable * mk.separation_yield)[:, None],
            np.array([mk.magnet_ndpr_t_per_t[g] for g in grades])[:, None],
            np.array([mk.magnet_heavy_t_per_t[g] for g in grades])[:, None],
        )
        self._price_floor = mk.price_floor_share * self.p0[:, None]  # (I, 1) US$/kg, fixed

    def _reo_content(self) -> np.ndarray:
        mk = self.mk
        r = np.zeros((I, G))
        for i in (*CONC, *OXIDE):
            r[i, ITEM_GOOD[i]] = 1.0
        r[MAG_STD, 1] = mk.magnet_ndpr_t_per_t["ndpr_magnet"]
        r[MAG_STD, 2] = mk.magnet_heavy_t_per_t["ndpr_magnet"]
        r[MAG_HT, 1] = mk.magnet_ndpr_t_per_t["heavy_magnet"]
        r[MAG_HT, 2] = mk.magnet_heavy_t_per_t["heavy_magnet"]
        return r

    def _init_stocks(self) -> None:
        f, fb = self.firms, self.fb
        monthly = f.capacity / 12.0
        stock_m = fb.producer_stock_months
        miner = f.kind == FirmKind.MINER
        f.stock[:, 0:3] += (miner * monthly * stock_m)[:, None] * f.basket
        sep = f.kind == FirmKind.SEPARATOR
        f.stock[:, 3:6] += (sep * monthly * stock_m)[:, None] * f.basket
        f.stock[:, 0:3] += (sep * monthly * fb.inventory_base_months)[:, None] * f.basket
        mag = f.kind == FirmKind.MAGNET_MAKER
        nd, hv = self._magnet_recipe()
        f.stock[:, MAG_STD] += mag * monthly * stock_m * (1 - f.ht_share)
        f.stock[:, MAG_HT] += mag * monthly * stock_m * f.ht_share
        f.stock[:, 4] += mag * monthly * fb.inventory_base_months * nd
        f.stock[:, 5] += mag * monthly * fb.inventory_base_months * hv
        manuf = f.kind == FirmKind.MANUFACTURER
        f.stock += manuf[:, None] * f.use_tpy / 12.0 * fb.inventory_base_months
        # producers expect to sell what the world used at the start, pro rata to capacity
        comp = output_composition(f, self.mk)
        cap_item = (monthly * (f.active & ~f.prospect))[:, None] * comp
        world_cap = cap_item.sum(axis=0)
        world_use = self.use_c.sum(axis=0) / 12.0
        # upstream items are wanted by the next stage: concentrate by oxide, oxide by magnets
        nd, hv = self._magnet_recipe()
        mag_t = world_use[MAG_STD] + world_use[MAG_HT]
        use_item = world_use.copy()
        use_item[4] += mag_t * float(np.mean(nd)) if f.n else 0.0
        use_item[5] += mag_t * float(np.mean(hv)) if f.n else 0.0
        use_item[0:3] = use_item[3:6] / self.mk.separation_yield
        util = np.where(
            world_cap > 0, np.minimum(use_item / np.maximum(world_cap, 1e-12), 1.0), 0.0
        )
        f.exp_sales[:] = cap_item * util[None, :]
        # projects already under way at the start (named firms with an 'online' date)
        under_way = f.online_month > 0
        f.proj_size[under_way] = f.prospect_size[under_way]
        f.proj_left[under_way] = f.online_month[under_way]
        capex = self._capex_per_tpy()
        f.proj_capex_left[under_way] = (
            f.proj_size[under_way] * capex[under_way] * 0.5
        )  # half the capex still to spend
        self._refresh_expectations(first=True)

    def _magnet_recipe(self, rows: slice | None = None) -> tuple[np.ndarray, np.ndarray]:
        """T of NdPr and Dy/Tb oxide per t of magnet, per firm (by its grade mix)."""
        # grade mixes are fixed, so the producers' recipe is built once, unless Dy/Tb thrifting
        # acts on the recipe (it then follows each country's Dy/Tb intensity month by month)
        thrift = self.fb.heavy_thrift_in_magnets
        if not thrift and isinstance(rows, slice) and rows == self.__dict__.get("producers"):
            cached = self.__dict__.get("_recipe_pr")
            if cached is None:
                cached = self._recipe_pr = self._magnet_recipe_of(rows)
                for a in cached:
                    a.flags.writeable = False
            return cached
        return self._magnet_recipe_of(rows)

    def _magnet_recipe_of(self, rows: slice | None) -> tuple[np.ndarray, np.ndarray]:
        mk = self.mk
        ht = self.firms.ht_share if rows is None else self.firms.ht_share[rows]
        nd, hv = mk.magnet_ndpr_t_per_t, mk.magnet_heavy_t_per_t
        heavy = (1 - ht) * hv["ndpr_magnet"] + ht * hv["heavy_magnet"]
        if self.fb.heavy_thrift_in_magnets:  # the maker's country's Dy/Tb intensity
            country = self.firms.country if rows is None else self.firms.country[rows]
            heavy = heavy * self.intensity_c[country, GOODS.index("heavy")]
        return (1 - ht) * nd["ndpr_magnet"] + ht * nd["heavy_magnet"], heavy

    def _capex_per_tpy(self) -> np.ndarray:
        cap = self.fb.capex_usd_per_t_per_year
        table = np.array(
            [cap["miner"], cap["separator"], cap["magnet_maker"], cap["recycler"], 0.0]
        )
        return table[self.firms.kind.astype(int)]

    # ------------------------------------------------------------------ calendar

    def date_of(self, month: int) -> str:
        """'YYYY-MM' of a month index."""
        y, m = self.start
        total = y * 12 + (m - 1) + month
        return f"{total // 12:04d}-{total % 12 + 1:02d}"

    @property
    def date(self) -> str:
        """The current month as 'YYYY-MM'."""
        cached = self.__dict__.get("_date")  # (month, text): asked several times a month
        if cached is None or cached[0] != self.month:
            cached = (self.month, self.date_of(self.month))
            self._date = cached
        return cached[1]

    # ------------------------------------------------------------------ the phase script

    def step(self) -> None:
        """Advance one month."""
        with one_blas_thread():
            self._apply_scheduled_events()  # 1. scheduled events apply
            self._states_decide()  # 2. states observe and choose policies
            plan = self._plan_production()  # 3. producers set output and projects
            orders = self._set_orders(plan)  # 4. manufacturers, processors, stockpiles order
            market = self._clear_markets(orders)  # 5. markets clear; prices adjust
            self._settle(plan, orders, market)  # 6. settlement: goods and money move
            self._learn()  # 7. learning: risk, expectations, substitution, disputes
            self._collect()  # 8. data collection
        self.month += 1
        if self.month >= self.horizon:
            self.running = False

    # ------------------------------------------------------------------ 1. events

    def _apply_scheduled_events(self) -> None:
        # what each state has spent before this month (the payoff counts this month's spending)
        self._spent_before = [st.spent_usd for st in self.states]
        for m in self.policy.expire(self.month):
            self.policy.log.append((self.month, m.origin, f"{m.type} {m.id} ended"))
            self._on_measure_end(m)
        schedule = self.__dict__.get("_event_schedule")
        if schedule is None:  # the scenario's events and their months are fixed for the run
            schedule = [
                (ev, month_index(ev.date, self.start))
                for ev in self.scenario.events
                if not (ev.coercive and not self.scenario.allow_coercion)
            ]
            self._event_schedule = schedule
        for ev, idx in schedule:
            if idx == self.month or (self.month == 0 and idx < 0):
                end = month_index(ev.end, self.start) if ev.end else None
                if end is not None and end < self.month:
                    continue
                self.apply(ev.type, dict(ev.params), ev.id, end, ev.coercive, "scenario")

    def apply_action(self, action: dict, origin: str) -> None:
        """Validate and apply a strategy's or player's action (an event table or a lift)."""
        kind = action.get("type")
        if kind == "lift":
            m = self.policy.remove(str(action.get("id")))
            if m is not None:
                self.policy.log.append((self.month, origin, f"lifted {m.type} {m.id}"))
                self._on_measure_end(m)
            return
        if kind == "end_dispute":
            d = self.policy.disputes.get(str(action.get("id")))
            if d is not None and d.active:
                d.ended_month = self.month
                self.policy.log.append((self.month, origin, f"dispute {d.id} dropped"))
            return
        ev = self._action_event(action)
        if ev.coercive and not self.scenario.allow_coercion:
            return
        end = month_index(ev.end, self.start) if ev.end else None
        eid = str(action["id"]) if action.get("id") else f"{origin}-{ev.type}-{self.month}"
        self.apply(ev.type, dict(ev.params), eid, end, ev.coercive, origin)

    def _action_event(self, action: dict) -> Event:
        """The validated event of an action table (``parse_event``), parsed once per table.

        States repeat the same tables month after month (finance and R&D at the same amounts,
        about 340 actions in a default run). The event depends on the month only through its
        date, which is not used here (an action's id comes from the action or the model), and
        through two checks, repeated on a hit: the date (the model's own month unless the table
        gives one) must parse, and an ``end`` must not be before it (the date is then part of
        the key). Values are keyed with their types (1 and 1.0 or a list and a tuple validate
        differently); a table holding an unhashable value is parsed every time.
        """
        dated = "date" in action
        key = (
            tuple((k, type(v), _typed(v) if type(v) is list else v) for k, v in action.items()),
            self.date if "end" in action and not dated else None,
        )
        cache = self.__dict__.setdefault("_action_events", {})  # shared with forks: same start
        try:
            ev = cache.get(key)
        except TypeError:  # an unhashable value (a nested list or table): no caching
            key, ev = None, None
        if ev is not None:
            if not dated:
                parse_month(self.date, "events[0].date")  # a month past 2300 fails, as before
            return ev
        table = {k: v for k, v in action.items()}
        table.setdefault("date", self.date)
        ev = parse_event(table, 0, self.start)
        if key is not None:
            cache[key] = ev
        return ev

    def apply(self, etype, params, eid, end, coercive, origin) -> None:
        """Put a measure in force or carry out a one-off event."""
        self.policy.log.append((self.month, origin, f"{etype} {eid}"))
        if etype == "embargo":
            params["_leakage"] = self.mk.leakage_share
        if etype == "offtake":
            self._prepare_contract(params)
        if etype == "price_floor":
            row = self._firm_row(params["firm"])
            self.firms.price_floor[row] = params["price_usd_per_kg"]
            self.firms.price_floor_good[row] = GOODS.index(params["good"])
        if etype in STANDING:
            self.policy.add(Measure(eid, etype, params, self.month, end, coercive, origin))
            return
        c = (
            COUNTRIES.index(params["country"])
            if "country" in params and params.get("country") != "all"
            else None
        )
        if etype == "dispute":
            self.policy.disputes[eid] = Dispute(
                eid,
                COUNTRIES.index(params["coercer"]),
                COUNTRIES.index(params["target"]),
                float(params.get("tension", 1.0)),
                self.month,
                params.get("demand", ""),
                end=end,
            )
        elif etype == "concede":
            for d in self.policy.active_disputes():
                if d.target == c:
                    self._concede(d)
        elif etype == "budget":
            self.states[c].budget_usd += params["usd"]
            self.external_in += params["usd"]
        elif etype == "finance":
            self._finance(c, params)
        elif etype == "substitution_rd":
            usd = params["usd"]
            self.states[c].budget_usd -= usd
            self.states[c].spent_usd += usd
            self.external_out += usd
            # a programme worth rd_programme_share of a year's RE-using output buys the full cut
            scale = max(self.industry_output(c) * self.fb.rd_programme_share, 1.0)
            cut = params.get("target_cut", 0.3)
            goods = [GOODS.index(params["good"])] if params.get("good") else list(range(G))
            self.rd_pressure[c, goods] += min(usd / scale, 1.0) * cut
        elif etype == "capacity_shock":
            kind = KIND_BY_NAME[params["kind"]]
            m = (self.firms.country == c) & (self.firms.kind == kind)
            self.firms.capacity[m] *= max(0.0, 1.0 + params["share"])
        elif etype == "new_deposit":
            self._new_deposit(c, params)
        elif etype == "demand_shock":
            goods = [GOODS.index(params["good"])] if params.get("good") else list(range(G))
            rows = [c] if c is not None else list(range(C))
            for r in rows:
                self.demand_mult[r, goods] *= max(0.0, 1.0 + params["share"])

    def _on_measure_end(self, m: Measure) -> None:
        if m.type == "price_floor":
            self.firms.price_floor[self._firm_row(m.params["firm"])] = 0.0

    def _firm_row(self, name: str) -> int:
        for j, nf in enumerate(self.scenario.named_firms):
            if nf.name == name:
                rows = np.flatnonzero(self.firms.named == j)
                return int(rows[0])
        raise ScenarioRuntimeError(f"firm: {name!r} is not a named firm in this scenario")

    def _prepare_contract(self, params: dict) -> None:
        stage = params.get("stage", "oxide")
        params["_item"] = ITEMS.index((params["good"], stage))
        seller = params["seller"]
        if seller in COUNTRIES:
            params["_firm"] = -1
            params["_country"] = COUNTRIES.index(seller)
        else:
            row = self._firm_row(seller)
            params["_firm"] = row
            params["_country"] = int(self.firms.country[row])
        if "price_usd_per_kg" not in params:
            params["price_usd_per_kg"] = float(self.price[params["_item"], params["_country"]])

    def _finance(self, c: int, params: dict) -> None:
        """State money for supply: a loan/equity to a named firm, or a project pool in a host."""
        usd = params.get("loan_usd", 0.0) + params.get("equity_usd", 0.0)
        st = self.states[c]
        if params.get("firm"):
            row = self._firm_row(params["firm"])
            self.firms.cash[row] += usd
            st.budget_usd -= usd
            st.spent_usd += usd
            cap = params.get("capacity_t_per_year", 0.0)
            if cap > 0 and self.firms.proj_size[row] == 0:
                self._start_project(np.array([row]), np.array([cap]))
            return
        host = COUNTRIES.index(params.get("host", params["country"]))
        kind = params.get("kind", "miner")
        cap = params.get("capacity_t_per_year", 0.0)
        if cap > 0 and usd == 0:
            usd = cap * self.fb.capex_usd_per_t_per_year[kind]
        st.budget_usd -= usd
        st.spent_usd += usd
        self.finance_pool[host, KIND_CODES.index(kind)] += usd

    def _new_deposit(self, c: int, params: dict) -> None:
        """Give a deposit to a mining firm of the country as an undeveloped prospect.

        First choice: a prospect with no project; then any miner not building; then any miner
        (the deposit waits until its project ends). A producing firm keeps its capacity and
        cost; the deposit's cost blends in when it is built.
        """
        f = self.firms
        miner = (f.country == c) & (f.kind == FirmKind.MINER)
        cand = np.flatnonzero(miner & f.prospect & (f.capacity == 0) & (f.proj_size == 0))
        if cand.size == 0:
            cand = np.flatnonzero(miner & (f.proj_size == 0))
        if cand.size == 0:
            cand = np.flatnonzero(miner)
        if cand.size == 0:
            raise ScenarioRuntimeError(
                f"new_deposit: {COUNTRIES[c]} has no mining firm or prospect to hold the deposit"
            )
        row = int(cand[0])
        size = params["t_per_year"]
        cost = params.get("cost_usd_per_kg", 0.0)
        held = f.prospect_size[row] if f.prospect[row] else 0.0
        if f.capacity[row] > 0 or f.proj_size[row] > 0:  # a running or building firm
            own = f.prospect_cost[row] or f.unit_cost[row]
            cost = cost or f.unit_cost[row]
            f.prospect_cost[row] = (held * own + size * cost) / (held + size)
        elif cost:  # an empty prospect: its cost is the deposit's (blended with what it holds)
            f.unit_cost[row] = (held * f.unit_cost[row] + size * cost) / (held + size)
        f.prospect_size[row] = held + size
        f.prospect[row] = True

    # ------------------------------------------------------------------ 2. states decide

    def observe(self, c: int, world: tuple | None = None) -> Observation:
        """The read-only view a state's strategy gets.

        ``world`` is :meth:`_observed_world` of this month (built here when not given): the
        states deciding in a month share it instead of each reducing the same arrays.
        """
        if world is None:
            world = self._observed_world()
        date, risk, share, price_multiple, fill, pain = world
        st = self.states[c]
        month = self.month
        disputes = tuple(
            dispute_view(
                id=d.id,
                coercer=COUNTRIES[d.coercer],
                target=COUNTRIES[d.target],
                tension=d.tension,
                months_open=month - d.start,
                conceded=d.conceded_month is not None,
                active=d.active,
            )
            for d in self.policy.disputes.values()
            if c in (d.coercer, d.target)
        )
        own = self.policy.memo(
            ("own", st.name),
            lambda: tuple(m.id for m in self.policy.measures.values() if m.origin == st.name),
        )
        return observation(
            country=st.name,
            month=month,
            date=date,
            params=st.params,
            allow_coercion=self.scenario.allow_coercion,
            budget_usd=st.budget_usd,
            price_multiple=price_multiple[c],
            fill=fill[c],
            risk_of=risk[c],
            import_share_from=share[c],
            pain=pain[c],
            stockpile_target_days=self.stockpile_target_days()[c],
            disputes=disputes,
            own_measures=own,
            forecast=None if self.forecasting else (lambda acts, n: self.forecast(c, acts, n)),
        )

    def _observed_world(self) -> tuple:
        """The parts of the observations that states' actions cannot change, for every country.

        Returns the date, the perceived risk (C, C), import shares by origin (C, C), price
        multiples (C, I), fill rates (C, I) and pain (C floats): each country's observation
        takes its row. Budgets, measures, disputes and stockpile targets, which an earlier
        state's actions in the same month can change, are read per observation. The rows are
        the same values, bit for bit, as each country's own reductions gave: the item sum
        runs in the same order, and a buyer's total over its (I, C) imports was the pairwise
        sum of these per-origin sums (numpy's 8-wide blocks; checked over all scenarios).
        """
        imports = self.supplier_share.sum(axis=0)  # (buyer, origin), summed over items
        imports.reshape(-1)[:: C + 1] = 0.0  # home supply is no import
        tot = imports.sum(axis=1)
        share = np.zeros((C, C))
        np.divide(imports, tot[:, None], out=share, where=(tot > 0)[:, None])
        price_multiple = self.price.T / self.p0
        fill = self.fill.copy()
        return (
            self.date,
            self.risk_by_country(),
            share,
            price_multiple,
            fill,
            self._pain_all(),
        )

    def _pain_all(self) -> list[float]:
        """:meth:`pain` (no coercer) of every country, the same sums over months."""
        quarter = self.__dict__.get("_industry_quarter")
        if quarter is None:  # a quarter's RE-using output: fixed for the run
            quarter = np.array([self.industry_output(c) / 4.0 for c in range(C)])
            self._industry_quarter = quarter
        if not self.lost_hist:
            return [0.0] * C
        lost = sum(self.lost_hist[-3:])  # 0 + h1 + h2 + h3, as pain adds them per country
        return np.divide(lost, quarter, out=np.zeros(C), where=~(quarter <= 0)).tolist()

    def risk_by_country(self) -> np.ndarray:
        """(C, C) mean perceived risk of each country's buyers toward each supplier country."""
        # every buyer of a country holds the same values: the mean is the country's row
        cached = self.__dict__.get("_risk_mean")
        if cached is None or cached[0] is not self.risk_c or cached[1] != self._risk_version:
            value = self.risk_c * (self._risk_buyers_by_country > 0)[:, None]
            cached = (self.risk_c, self._risk_version, value)
            self._risk_mean = cached
        return cached[2]

    def _states_decide(self) -> None:
        world = None  # built at the first observation of the month, shared by the others
        for st in self.states:
            if not st.decides_this_month(self.month) or not st.strategy.needs_observation:
                continue
            if world is None:
                world = self._observed_world()
            actions = st.strategy.decide(self.observe(st.index, world))
            for a in actions:
                self.apply_action(a, st.name)

    # ------------------------------------------------------------------ policy read-outs

    # Each read-out depends only on the measures in force: it is built once per change of
    # them (``PolicyState.memo``; read-only arrays) instead of at every call, several a month.

    def permit_months(self) -> np.ndarray:
        """(C,) months to permit a project in each country."""
        return self.policy.memo("permit_months", self._permit_months)

    def _permit_months(self) -> np.ndarray:
        out = np.array([cp.permit_months for cp in self.scenario.countries], dtype=float)
        for m in self.policy.of_type("permitting"):
            out[COUNTRIES.index(m.params["country"])] = m.params["permit_months"]
        return out

    def stockpile_target_days(self) -> np.ndarray:
        """(C,) stockpile targets in days of use."""
        return self.policy.memo("stockpile_target_days", self._stockpile_target_days)

    def _stockpile_target_days(self) -> np.ndarray:
        out = np.array([cp.stockpile_target_days for cp in self.scenario.countries])
        for m in self.policy.of_type("stockpile"):
            c = COUNTRIES.index(m.params["country"])
            out[c] = max(out[c], m.params["target_days"])
        return out

    def stockpile_partners(self) -> tuple[tuple[int, ...], ...]:
        """For each state, the countries its stockpile may release into (itself first)."""
        return self.policy.memo("stockpile_partners", self._stockpile_partners)

    def _stockpile_partners(self) -> tuple[tuple[int, ...], ...]:
        out = [[c] for c in range(C)]
        for m in self.policy.of_type("stockpile"):
            c = COUNTRIES.index(m.params["country"])
            for p in m.params.get("partners", ()):
                pi = COUNTRIES.index(p)
                if pi not in out[c]:
                    out[c].append(pi)
        return tuple(tuple(x) for x in out)

    def recycling_subsidy(self) -> np.ndarray:
        """(C,) US$/kg paid to recyclers."""
        return self.policy.memo("recycling_subsidy", self._recycling_subsidy)

    def _recycling_subsidy(self) -> np.ndarray:
        out = np.zeros(C)
        for m in self.policy.of_type("recycling_subsidy"):
            c = COUNTRIES.index(m.params["country"])
            out[c] = max(out[c], m.params["usd_per_kg"])
        return out

    def tech_ban(self) -> tuple[np.ndarray, np.ndarray]:
        """(C,) extra months and cost multiple for processing projects, per host country."""
        return self.policy.memo("tech_ban", self._tech_ban)

    def _tech_ban(self) -> tuple[np.ndarray, np.ndarray]:
        extra = np.zeros(C)
        mult = np.ones(C)
        for m in self.policy.of_type("tech_export_ban"):
            x = COUNTRIES.index(m.params["exporter"])
            others = np.arange(C) != x
            extra[others] = np.maximum(extra[others], m.params.get("extra_months", 12))
            mult[others] = np.maximum(mult[others], m.params.get("cost_multiple", 1.3))
        return extra, mult

    # ------------------------------------------------------------------ 3. production

    def _plan_production(self) -> dict:
        if self._k is not None:  # the same arithmetic, fused (abm.kernels.plan)
            return self._plan_production_fused()
        f, mk = self.firms, self.mk
        pr = self.producers
        # projects that finish this month come online
        done_pr = (f.proj_size[pr] > 0) & (f.proj_left[pr] <= 0)  # only producers build
        if done_pr.any():
            done = np.zeros(f.n, dtype=bool)
            done[pr] = done_pr
            # a deposit held by a producing firm blends its own cost into the firm's
            blend = done & (f.prospect_cost > 0) & (f.capacity > 0)
            if blend.any():
                new, old = f.proj_size[blend], f.capacity[blend]
                f.unit_cost[blend] = (old * f.unit_cost[blend] + new * f.prospect_cost[blend]) / (
                    old + new
                )
            f.capacity[done] += f.proj_size[done]
            f.ramp_cap[done] = f.proj_size[done]
            f.ramp_left[done] = self.fb.ramp_up_months
            f.active[done] = True
            # what the project did not build (a deposit found meanwhile) stays a prospect
            f.prospect_size[done] = np.maximum(f.prospect_size[done] - f.proj_size[done], 0.0)
            f.prospect[done] = f.prospect_size[done] > 0
            f.prospect_cost[done & ~f.prospect] = 0.0
            f.proj_size[done] = 0.0
            f.proj_capex_left[done] = 0.0
            fresh = done & (f.exp_sales.sum(axis=1) == 0)
            if fresh.any():  # a new plant expects to sell half its output at first
                f.exp_sales[fresh] = 0.5 * (f.capacity[fresh] / 12.0)[:, None] * self.comp[fresh]
        basket = f.basket[pr]
        stock = f.stock[pr]
        monthly = self._monthly_capacity()
        # new capacity ramps up linearly over ramp_up_months
        ramping = f.ramp_left[pr] > 0
        if ramping.any():
            f.ramp_left[pr] = np.maximum(f.ramp_left[pr] - 1, 0)
            f.ramp_cap[pr] = np.where(f.ramp_left[pr] > 0, f.ramp_cap[pr], 0.0)
        rate = f.run_rate[pr, 0]
        rate += RATE_ADJUST * (supply_response(self._op_margin[pr]) - rate)
        # state-backed mines keep a floor of output whatever the margin (must_run_share)
        floor = self._pr_run_floor  # state-backed mines' floor (fixed)
        rate = np.maximum(rate, floor)
        f.run_rate[pr, 0] = rate
        out = np.zeros((self.P, I))
        used = np.zeros((self.P, I))
        # miners: output follows the margin on the whole basket, but never more than they expect
        # to sell plus half the gap to their stock target (the group most in demand decides;
        # the rest of the basket is a co-product); quota caps a country's total
        miner = self._pr_miner
        by_group = monthly[:, None] * basket
        want = self._sales_plan(f.exp_sales[pr, 0:3], stock[:, 0:3], by_group, probe=by_group)
        has_g, basket_div, nd_div, has_hv, hv_div = self._plan_guards()
        sells = np.where(has_g, want / basket_div, 0.0).max(axis=1)
        mine = np.where(miner, np.maximum(np.minimum(monthly * rate, sells), monthly * floor), 0.0)
        self._mining_quotas(mine)
        out[:, 0:3] = mine[:, None] * basket
        # separators: process the concentrate they bought, up to capacity
        sep = self._pr_sep
        conc = stock[:, 0:3]
        conc_tot = conc.sum(axis=1)
        through = np.where(sep, np.minimum(monthly, conc_tot), 0.0)
        take = np.where(conc_tot > 0, through / np.where(conc_tot > 0, conc_tot, 1.0), 0.0)
        used[:, 0:3] += conc * take[:, None]
        out[:, 3:6] += conc * take[:, None] * mk.separation_yield
        # magnet makers: limited by capacity, sales and oxide in stock
        mag = self._pr_mag
        nd, hv = self._magnet_recipe(pr)
        if self.fb.heavy_thrift_in_magnets:  # the Dy/Tb per magnet moves with the intensity
            hv_div = np.maximum(hv, 1e-12)
        can_nd = stock[:, 4] / nd_div
        can_hv = np.where(has_hv, stock[:, 5] / hv_div, np.inf)
        make = np.minimum(np.minimum(self._magnet_plan(monthly), can_nd), can_hv)
        make = np.where(mag, make, 0.0)
        used[:, 4] += make * nd
        used[:, 5] += make * hv
        ht = f.ht_share[pr]
        out[:, MAG_STD] += make * (1 - ht)
        out[:, MAG_HT] += make * ht
        # recyclers: limited by end-of-life material in their country
        rec = self._pr_rec
        rec_cap = np.where(rec, monthly, 0.0)
        avail = self._recycling_availability(rec_cap)
        rec_out = rec_cap * avail[f.country[pr]] * rate
        out[:, 3:6] += rec_out[:, None] * basket * rec[:, None]
        units = mine + through + make + rec_out
        cost = units * KG_PER_T * f.unit_cost[pr]
        util = np.where(monthly > 0, units / np.maximum(monthly, 1e-12), 0.0)
        f.utilisation[pr] += 0.1 * (util - f.utilisation[pr])
        self._units = units
        self._start_and_advance_projects()
        limit = HOLD_LIMIT_MONTHS * monthly[:, None] * self.comp[pr] * miner[:, None]
        return {
            "out": out,
            "used": used,
            "cost": cost,
            "recycled": rec_out,
            "units": units,
            "hold_limit": limit,
        }

    def _plan_production_fused(self) -> dict:
        """``_plan_production`` on the numba engine: two kernels, a matrix product between them.

        :func:`abm.kernels.plan.plan_output` does everything up to the recyclers' capacity by
        country (a matrix product: it stays numpy), mining quotas included;
        :func:`abm.kernels.plan.plan_projects` does the rest of the output and
        ``_start_and_advance_projects`` up to which producers start a project (starting them
        stays Python). The same arithmetic as the numpy code, element by element.
        """
        f, fb, p, kp = self.firms, self.fb, self.P, self._k.plan
        has_g, basket_div, nd_div, has_hv, hv_div = self._plan_guards()
        nd, hv = self._magnet_recipe(self.producers)
        if fb.heavy_thrift_in_magnets:  # the Dy/Tb per magnet moves with the intensity
            hv_div = np.maximum(hv, 1e-12)
        monthly, rate, mine, through, make, rec_cap, out, used = kp.plan_output(
            p,
            f.capacity,
            f.ramp_cap,
            f.ramp_left,
            f.active,
            f.idle,
            f.prospect,
            f.prospect_size,
            f.prospect_cost,
            f.unit_cost,
            f.proj_size,
            f.proj_left,
            f.proj_capex_left,
            f.exp_sales,
            self.comp,
            int(fb.ramp_up_months),
            f.run_rate,
            self._op_margin,
            self._pr_run_floor,
            float(SUPPLY_MARGIN_BAND),
            float(2 * SUPPLY_MARGIN_BAND),
            float(RATE_ADJUST),
            float(PROBE_SHARE),
            float(1.0 + fb.producer_stock_months),
            f.basket,
            f.stock,
            has_g,
            basket_div,
            self._pr_miner,
            self._pr_sep,
            self._pr_mag,
            self._pr_rec,
            nd,
            hv,
            nd_div,
            has_hv,
            hv_div,
            f.ht_share,
            float(self.mk.separation_yield),
            self._c_pr,
            self.policy.production_quota_t_per_year(self.month),
            *self.policy.heavy_ore_quota(self.month),
        )
        eol = self._end_of_life_t()  # (C,) t REO per month
        cap_c = self.by_country(rec_cap, self.producers)
        u = self.rng.random(f.n)  # the start draws (one per firm, as on the numpy engine)
        pool_on = bool(self.finance_pool.any())
        units, cost, rec_out, go, limit = kp.plan_projects(
            p,
            mine,
            through,
            make,
            rec_cap,
            rate,
            monthly,
            eol,
            cap_c,
            self._c_pr,
            f.basket,
            self._pr_rec,
            self._pr_miner,
            out,
            f.unit_cost,
            float(KG_PER_T),
            f.utilisation,
            f.capacity,
            f.active,
            f.idle,
            f.prospect,
            f.prospect_size,
            f.proj_size,
            f.proj_left,
            f.proj_capex_left,
            f.proj_bad_months,
            int(fb.abandon_after_months),
            u,
            self._kind_pr,
            pool_on,
            self.finance_pool,
            self._kind_pool,
            self._capex,
            f.expected_margin,
            float(fb.investment_hurdle),
            float(max(fb.investment_hurdle, 1e-9)),
            float(fb.expansion_share),
            float(fb.expansion_utilisation),
            float(fb.pipeline_limit_share),
            float(fb.project_start_prob),
            self.comp,
            float(HOLD_LIMIT_MONTHS),
        )
        self._units = units
        self._start_projects(go)
        return {
            "out": out,
            "used": used,
            "cost": cost,
            "recycled": rec_out,
            "units": units,
            "hold_limit": limit,
        }

    def _plan_guards(self) -> tuple:
        """Producers' basket and recipe masks and division guards (fixed: built once)."""
        fixed = self.__dict__.get("_plan_fixed")
        if fixed is None:  # baskets and grade mixes are fixed: their masks and guards once
            basket = self.firms.basket[self.producers]
            nd, hv = self._magnet_recipe(self.producers)
            fixed = self._plan_fixed = (
                basket > 0,
                np.maximum(basket, 1e-12),
                np.maximum(nd, 1e-12),
                hv > 0,
                np.maximum(hv, 1e-12),
            )
        return fixed

    def _mining_quotas(self, mine: np.ndarray) -> None:
        """Scale (P,) miners' monthly output in place so no country mines beyond its quota."""
        f, pr, miner = self.firms, self.producers, self._pr_miner
        basket = f.basket[pr]
        pq = self.policy.production_quota_t_per_year(self.month)
        hq, h_share = self.policy.heavy_ore_quota(self.month)
        for c in np.isfinite(hq).nonzero()[0]:  # a quota split by ore: each part caps its mines
            heavy_ore = basket[:, 2] >= h_share[c]
            for part, cap in ((heavy_ore, hq[c]), (~heavy_ore, max(pq[c] - hq[c], 0.0))):
                m = miner & (f.country[pr] == c) & part
                tot = mine[m].sum()
                if tot > cap / 12.0:
                    mine[m] *= cap / 12.0 / tot
        for c in np.isfinite(pq).nonzero()[0]:
            m = miner & (f.country[pr] == c)
            tot = mine[m].sum()
            if tot > pq[c] / 12.0:
                mine[m] *= pq[c] / 12.0 / tot

    def _recycling_availability(self, rec_cap: np.ndarray) -> np.ndarray:
        """(C,) share of recyclers' capacity (P,) the country's end-of-life scrap can fill."""
        eol = self._end_of_life_t()  # (C,) t REO per month
        cap_c = self.by_country(rec_cap, self.producers)
        return np.where(cap_c > 0, np.minimum(eol / np.where(cap_c > 0, cap_c, 1.0), 1.0), 0.0)

    def _monthly_capacity(self) -> np.ndarray:
        """(P,) t per month producers can make: running capacity less what is still ramping."""
        f, pr = self.firms, self.producers
        ramp = max(self.fb.ramp_up_months, 1)
        cap = f.capacity[pr] - f.ramp_cap[pr] * (f.ramp_left[pr] / ramp)
        return np.where(f.active[pr] & ~f.idle[pr], np.maximum(cap, 0.0) / 12.0, 0.0)

    def _sales_plan(
        self, exp: np.ndarray, held: np.ndarray, cap: np.ndarray, probe: np.ndarray | None = None
    ) -> np.ndarray:
        """Output a processor plans: expected sales plus half the gap to its stock target.

        What is held at planning time includes last month's output (next month's sales), so the
        target is ``1 + producer_stock_months`` months of expected sales. Expected sales never
        fall below a small probe (5% of ``probe``, by default the capacity), so a plant that
        sold nothing still offers a little and can see demand return. Capped at ``cap``.
        """
        exp = np.maximum(exp, PROBE_SHARE * (cap if probe is None else probe))
        target = (1.0 + self.fb.producer_stock_months) * exp
        out = exp + (target - held) / 2.0
        np.maximum(out, 0.0, out=out)  # np.clip(out, 0, cap), without its wrapper's overhead
        return np.minimum(out, cap, out=out)

    def _magnet_plan(self, monthly: np.ndarray) -> np.ndarray:
        """(P,) magnet output planned within capacity (cost-plus prices: output follows orders)."""
        f, pr = self.firms, self.producers
        exp = f.exp_sales[pr, MAG_STD] + f.exp_sales[pr, MAG_HT]
        held = f.stock[pr, MAG_STD] + f.stock[pr, MAG_HT]
        return self._sales_plan(exp, held, monthly)

    def _end_of_life_t(self) -> np.ndarray:
        fb = self.fb
        life = fb.product_life_years
        past = (1.0 + self.growth) ** (self.month / 12.0 - life)
        reo = self.__dict__.get("_reo_use_c")
        if reo is None:  # (C,) t REO per year at the start: fixed
            reo = self._reo_use_c = (self.use_c @ self.reo_per_item).sum(axis=1)
        return fb.recycling_collection_rate * reo * past / 12.0

    def _start_and_advance_projects(self) -> None:
        f, fb, pr = self.firms, self.fb, self.producers
        building = f.proj_size[pr] > 0
        f.proj_left[pr] -= building.astype(np.int32)
        # abandonment: sustained expected losses during construction
        gone = building & (f.proj_bad_months[pr] >= fb.abandon_after_months)
        if gone.any():
            rows = gone.nonzero()[0]
            f.proj_size[rows] = 0.0
            f.proj_capex_left[rows] = 0.0
            f.proj_bad_months[rows] = 0
        # new projects (one draw per firm, manufacturers included, so the stream is fixed)
        u = self.rng.random(f.n)[pr]
        prospect = f.prospect[pr]
        # a bankrupt firm's assets are a prospect again: a new owner may redevelop them
        eligible = (f.proj_size[pr] == 0) & ((f.active[pr] & ~f.idle[pr]) | prospect)
        subsidy = self._pool_share()
        # demand discipline: incumbents expand only if they and their stage (world-wide) run
        # near capacity; newcomers enter on the expected margin alone
        kinds = self._kind_pr
        on = f.capacity[pr] * f.active[pr]
        cap_k = np.bincount(kinds, weights=on, minlength=5)
        used_k = np.bincount(kinds, weights=on * f.utilisation[pr], minlength=5)
        stage_util = np.where(cap_k > 0, used_k / np.maximum(cap_k, 1e-12), 1.0)[kinds]
        busy = prospect | (np.minimum(f.utilisation[pr], stage_util) >= fb.expansion_utilisation)
        # the richer the expected margin, the sooner a decision (up to 10x the base rate)
        margin = f.expected_margin[pr] + subsidy
        pull = np.minimum(np.maximum(margin / max(fb.investment_hurdle, 1e-9), 0), 10)
        # investors see the projects already under way in their stage world-wide: the larger
        # that pipeline against capacity online, the fewer new projects start
        crowd = 1.0
        if fb.pipeline_limit_share > 0:  # 0 = no brake
            pipe_k = np.bincount(kinds, weights=f.proj_size[pr], minlength=5)
            share = np.where(cap_k > 0, pipe_k / np.maximum(cap_k, 1e-12), 0.0)[kinds]
            crowd = np.minimum(np.maximum(1.0 - share / fb.pipeline_limit_share, 0.0), 1.0)
        go = (
            eligible
            & busy
            & (margin > fb.investment_hurdle)
            & (u < fb.project_start_prob * pull * crowd)
        )
        self._start_projects(go)

    def _start_projects(self, go: np.ndarray) -> None:
        """Start the projects of the producers in the (P,) mask ``go``, then the state's plans."""
        f, fb = self.firms, self.fb
        if go.any():
            rows = go.nonzero()[0]  # producers are the first rows: same indices
            size = np.where(
                f.prospect[rows], f.prospect_size[rows], fb.expansion_share * f.capacity[rows]
            )
            keep = size > 0
            self._start_project(rows[keep], size[keep])
        if (self._state_headroom >= 0).any() or (self._sep_headroom >= 0).any():
            self._state_directed_capacity()

    def _state_directed_capacity(self) -> None:
        """State-backed mines and separators expand to the state's plan (a policy, not a margin).

        Mines: in a country with ``state_capacity_headroom`` >= 0 and a production quota in
        force, when mining capacity online plus under construction falls short of the quota
        times ``1 + headroom``, the state directs its operating miners to expand by the gap, pro
        rata to their capacity, whatever the full-cost margin (state groups answer to the plan,
        not to a hurdle rate). Separators: with ``state_separation_headroom`` >= 0, the plan is
        the ore the country has to separate, its mining quota plus the concentrate it imported
        (12-month mean), times ``1 + headroom``; its operating separators expand by the gap the
        same way. An expansion of a working plant needs no permit: it takes
        ``state_expansion_months`` and then ramps up like any new capacity. Capex is paid from
        the firms' cash, as for any project.
        """
        f = self.firms
        pq = self.policy.production_quota_t_per_year(self.month)
        hq, h_share = self.policy.heavy_ore_quota(self.month)
        pr = self.producers
        # (nan_to_num's wrapper costs 30 us; the 12-month means are finite or NaN at the start)
        imports = np.where(np.isnan(self._conc_imports), 0.0, self._conc_imports)
        # where the quota has a heavy-rich ore part, heavy-rich mines expand to that part and
        # the others to the rest; otherwise every mine plans for the whole quota
        split = np.isfinite(hq)
        no_split = ~split
        all_c = np.ones(C, dtype=bool)
        # (kind, headroom, extra need, which ore: None = any, True = heavy-rich, False = other,
        # countries the plan applies to, the quota it plans for)
        plans = (
            (FirmKind.MINER, self._state_headroom, np.zeros(C), None, no_split, pq),
            (FirmKind.MINER, self._state_headroom, np.zeros(C), True, split, hq),
            (FirmKind.MINER, self._state_headroom, -hq, False, split, pq),
            (FirmKind.SEPARATOR, self._sep_headroom, imports, None, all_c, pq),
        )
        on = None
        total = pq.tolist()  # Python floats: the same float64 arithmetic, without numpy scalars
        for k, headroom, extra, ore, country_ok, quota in plans:
            room = headroom.tolist()
            plan_t = quota.tolist()
            for c in range(C):
                if not (room[c] >= 0 and math.isfinite(total[c]) and country_ok[c]):
                    continue
                key = (k, c, ore, float(h_share[c]))
                in_c = self._state_rows.get(key)
                if in_c is None:  # a firm's kind, home country and ore basket are fixed
                    in_c = (f.kind[pr] == k) & (f.country[pr] == c)
                    if ore is not None:
                        in_c &= (f.basket[pr][:, 2] >= h_share[c]) == ore
                    self._state_rows[key] = in_c
                if self._k is not None:  # the same arithmetic, fused (abm.kernels.plan)
                    need = plan_t[c] + float(extra[c])
                    rows, size = self._k.plan.state_expansion(
                        in_c, f.capacity, f.active, f.idle, f.proj_size, need, float(room[c])
                    )
                    if rows.size == 0:
                        continue
                    self._start_project(rows, size)
                    months = self.scenario.countries[c].state_expansion_months
                    f.proj_left[rows] = months
                    continue
                if on is None:
                    on = f.capacity[pr] * f.active[pr]
                online = on[in_c].sum()
                have = float(online + f.proj_size[pr][in_c].sum())
                need = plan_t[c] + float(extra[c])
                gap = need * (1.0 + room[c]) - have
                if gap <= 0.01 * need:
                    continue
                ok = (
                    in_c
                    & f.active[pr]
                    & ~f.idle[pr]
                    & (f.proj_size[pr] == 0)
                    & (f.capacity[pr] > 0)
                )
                rows = np.flatnonzero(ok)
                if rows.size == 0:
                    continue
                size = gap * f.capacity[rows] / f.capacity[rows].sum()
                self._start_project(rows, size)
                months = self.scenario.countries[c].state_expansion_months
                f.proj_left[rows] = months

    def _entrant_learning(self) -> None:
        """Entrants' unit costs fall with their cumulative output (learning by doing).

        Wright's law: each doubling of a firm's cumulative output beyond its first year at
        capacity cuts its unit cost by ``learning_rate``, down to ``learning_floor_share`` of
        its cost at first output. Only firms built during the run (prospects at the start and
        named firms due online later) learn; incumbents are taken as mature.
        """
        fb, f, pr = self.fb, self.firms, self.producers
        ent = self._entrant[pr] & (self._units > 0)
        if not ent.any():
            return
        cum_old, cum_new, learn, factor = self._wright(ent)
        first = ent & (cum_old <= 0)
        self._cost0[pr] = np.where(first, f.unit_cost[pr], self._cost0[pr])
        self._cum_units[pr] = cum_new
        cut = f.unit_cost[pr] * factor
        floor = fb.learning_floor_share * self._cost0[pr]
        f.unit_cost[pr] = np.where(learn, np.maximum(cut, floor), f.unit_cost[pr])

    def _wright(self, ent: np.ndarray) -> tuple:
        """Producers' cumulative output before and after this month, who learns, and the factor.

        ``ent`` marks the entrants that produced. A row learns past a year of output at
        capacity; its unit cost is multiplied by ``(cum_new / cum_old) ** -b``. The power is
        numpy's on both engines (the numba kernel is handed the factors): numpy's vectorised
        power can differ from the C library's in the last bit on some CPUs.
        """
        f, pr = self.firms, self.producers
        cum_old = self._cum_units[pr].copy()
        cum_new = cum_old + np.where(ent, self._units, 0.0)
        ref = f.capacity[pr]  # a year of output at capacity (t)
        learn = ent & (cum_old >= ref) & (ref > 0)
        b = -np.log2(1.0 - self.fb.learning_rate)
        ratio = np.where(learn, cum_new / np.maximum(cum_old, 1e-12), 1.0)
        return cum_old, cum_new, learn, ratio ** (-b)

    def _pool_share(self) -> np.ndarray:
        """(P,) share of a new project's capex the host's finance pool would cover."""
        f, pr = self.firms, self.producers
        if not self.finance_pool.any():
            return np.zeros(self.P)
        pool = self.finance_pool[self._c_pr, self._kind_pool]
        size = np.where(
            f.prospect[pr], f.prospect_size[pr], self.fb.expansion_share * f.capacity[pr]
        )
        capex = np.maximum(size * self._capex[pr], 1.0)
        return np.minimum(pool / capex, 0.8)

    def _start_project(self, rows: np.ndarray, size: np.ndarray) -> None:
        f = self.firms
        if rows.size == 0:
            return
        if self._k is not None:  # the same arithmetic, fused (abm.kernels.plan)
            extra, mult = self.tech_ban()
            self._k.plan.start_projects(
                np.asarray(rows, dtype=np.intp),
                np.asarray(size, dtype=float),
                self._kind_n,
                self._build_by_kind,
                f.build_months,
                f.country,
                self._miner_n,
                self._mine_build,
                self._processing_n,
                f.permitted,
                self.permit_months(),
                extra,
                mult,
                self._capex,
                self.finance_pool,
                f.cash,
                f.proj_size,
                f.proj_left,
                f.proj_capex_left,
                f.proj_bad_months,
            )
            return
        kinds = np.minimum(self._kind_n[rows], 3)
        build = self._build_by_kind[kinds]
        build = np.where(f.build_months[rows] > 0, f.build_months[rows], build)
        mine_build = self._mine_build
        host = f.country[rows]
        is_mine = self._miner_n[rows] & (mine_build[host] > 0)
        build = np.where(is_mine & (f.build_months[rows] == 0), mine_build[host], build)
        extra, mult = self.tech_ban()
        processing = self._processing_n[rows]
        permit = np.where(f.permitted[rows], 0.0, self.permit_months()[host])
        lead = permit + build + np.where(processing, extra[host], 0.0)
        capex = size * self._capex[rows] * np.where(processing, mult[host], 1.0)
        # the host's finance pool pays up to 80% of capex, first come first served (in row
        # order, on Python floats: the same float64 arithmetic without numpy scalars; rows are
        # distinct, so the cash top-ups can be added at once)
        if self.finance_pool.any():
            pool = self.finance_pool.tolist()
            paid = []
            for k, c, cost in zip(kinds.tolist(), host.tolist(), capex.tolist(), strict=True):
                p = min(pool[c][k], 0.8 * cost)
                pool[c][k] -= p
                paid.append(p)
            self.finance_pool[:] = pool
            f.cash[rows] += paid
        f.proj_size[rows] = size
        f.proj_left[rows] = np.maximum(lead, 1).astype(np.int32)
        f.proj_capex_left[rows] = capex
        f.proj_bad_months[rows] = 0

    # ------------------------------------------------------------------ 4. orders

    def _demand_factor(self) -> np.ndarray:
        """(C, I) this month's end use per item relative to the start (growth, shocks, price)."""
        mk = self.mk
        grow = self.use_growth(self.month, per_item=True)
        eps = getattr(self, "_eps", None)
        if eps is None:  # fixed for the run: built on first use
            eps = np.array([mk.demand_elasticity[GOODS[ITEM_GOOD[i]]] for i in range(I)])
            eps[MAG_STD] = mk.demand_elasticity["ndpr"]
            eps[MAG_HT] = mk.demand_elasticity["heavy"]
            self._eps = eps
        rel = (self.price / self.p0[:, None]).T  # (C, I)
        shock = self.demand_mult[:, self._good_of_item]
        choke = mk.choke_price_multiple
        destroyed = np.minimum(np.maximum((1.0 - rel / choke) / (1.0 - 1.0 / choke), 0.0), 1.0)
        return grow * shock * rel ** (-eps[None, :]) * destroyed

    def use_growth(self, month: int, per_item: bool = False) -> np.ndarray:
        """End use at ``month`` relative to the start from growth alone.

        ``(1 + demand_growth_per_year + demand_growth_offset_per_year[g]) ** (month / 12)``:
        (C, G) per element group, or (C, I) per traded item with ``per_item`` (magnets follow
        their NdPr or Dy/Tb content); (C, 1) when no country has a per-group offset.
        """
        base = self.__dict__.get("_growth_base")
        if base is None:  # 1 + yearly rate: (C, 1), (C, G) and (C, I), fixed for the run
            if not self._growth_offset.any():
                one = (1.0 + self.growth)[:, None]
                base = (one, one)
            else:
                rate = self.growth[:, None] + self._growth_offset
                base = (1.0 + rate, 1.0 + rate[:, self._good_of_item])
            self._growth_base = base
        return base[per_item] ** (month / 12.0)

    @staticmethod
    def _intensity_good(i: int) -> int:
        if i == MAG_STD:
            return 1
        if i == MAG_HT:
            return 2
        return ITEM_GOOD[i]

    def _set_orders(self, plan: dict) -> dict:
        f, fb = self.firms, self.fb
        mf = self.makers
        factor = self._demand_factor()  # (C, I)
        mj = self._mj  # the items manufacturers use
        # need = monthly use x demand factor x intensity; the last two are per country
        per_c = factor[:, mj] * self.intensity_c[:, self._mj_good]
        # each buyer's risk, weighted by where its country bought each item last month
        # (r_eff[c, i] = sum_x risk[c, x] * share[i, c, x]: per country, as risk is)
        r_eff = np.einsum("cx,icx->ci", self.risk_c, self.supplier_share)
        if self._k is not None:  # the same arithmetic, fused (abm.kernels.orders)
            need, orders_mf, stock_mf = self._k.orders.manufacturer_orders(
                self._monthly_use,
                per_c,
                r_eff[:, mj] * fb.inventory_risk_months,
                self._c_mf,
                f.risk_sensitivity[mf],
                float(fb.inventory_base_months),
                float(fb.inventory_adjust_months),
                f.stock,
                self.P,
                mj.start,
            )
        else:
            need, orders_mf, stock_mf = self._manufacturer_orders(per_c, r_eff)
        # processors: inputs for the output they expect to sell, plus a base inventory
        if self._k is not None:  # the same arithmetic, fused (abm.kernels.orders)
            orders = self._producer_orders_fused()
        else:
            orders = self._producer_orders()
        # state stockpiles: buy toward the target in calm months, release in shortages
        use_g = (self.use_c * factor) @ self.reo_per_item / 12.0  # (C, G) t REO per month
        target_t = self.stockpile_target_days()[:, None] / 30.0 * use_g
        buy = np.zeros((C, I))
        release = np.zeros((C, I))  # indexed by the market where tonnes are offered
        release_from = np.zeros((C, G))  # by owner
        partners = self.stockpile_partners()
        # small tables as Python floats for the scalar loop below (the same float64 arithmetic)
        fill, price, p0 = self.fill.tolist(), self.price.tolist(), self.p0.tolist()
        target_l, use_l = target_t.tolist(), use_g.tolist()
        thresholds = self.__dict__.get("_release_fill")
        if thresholds is None:  # fixed for the run
            thresholds = [cp.stockpile_release_fill for cp in self.scenario.countries]
            self._release_fill = thresholds
        buy_share = self.mk.stockpile_buy_share
        for s in range(C):
            st = self.states[s]
            pile = st.stockpile_t.tolist()
            for g in range(G):
                i = OXIDE[g]
                calm = fill[s][i] >= 0.95 and price[i][s] <= 2.0 * p0[i]
                if calm and pile[g] < target_l[s][g] and st.budget_usd > 0:
                    # fill the gap over a year, never more than a small share of the market
                    buy[s, i] = min((target_l[s][g] - pile[g]) / 12.0, buy_share * use_l[s][g])
                left = pile[g]
                for y in partners[s]:
                    if left > 0 and fill[y][i] < thresholds[y]:
                        q = min(left, (1.0 - fill[y][i]) * use_l[y][g])
                        release[y, i] += q
                        release_from[s, g] += q
                        left -= q
        return {
            "need": need,
            "orders": orders,
            "orders_mf": orders_mf,
            "stock_mf": stock_mf,
            "buy": buy,
            "release": release,
            "release_from": release_from,
            "partners": partners,
            "plan_out": plan["out"],
        }

    def _producer_orders(self) -> np.ndarray:
        """(P, I) separators' and magnet makers' orders for their inputs (numpy engine)."""
        f, fb, pr = self.firms, self.fb, self.producers
        orders = np.zeros((self.P, I))  # producers' orders
        stock = f.stock[pr]
        monthly = self._monthly_capacity()
        # separators buy concentrate to run at the rate their margin supports
        sep = self._pr_sep
        ox_plan = self._sales_plan(
            f.exp_sales[pr, 3:6],
            stock[:, 3:6],
            monthly[:, None],  # broadcasts against the (P, 3) plan (np.broadcast_to costs 15 us)
            probe=monthly[:, None] * f.basket[pr],
        )
        inp = ox_plan / self.mk.separation_yield
        tot = inp.sum(axis=1)
        room = monthly * f.run_rate[pr, 0]
        inp = inp * np.where(tot > room, room / np.maximum(tot, 1e-12), 1.0)[:, None]
        g_in = (fb.inventory_base_months * inp - stock[:, 0:3]) / fb.inventory_adjust_months
        orders[:, 0:3] = np.where(sep[:, None], np.maximum(inp + g_in, 0.0), 0.0)
        mag = self._pr_mag
        nd, hv = self._magnet_recipe(pr)
        make = self._magnet_plan(monthly)
        for col, per in ((4, nd), (5, hv)):
            w = make * per
            g = (fb.inventory_base_months * w - stock[:, col]) / fb.inventory_adjust_months
            orders[:, col] = np.where(mag, np.maximum(w + g, 0.0), 0.0)
        return orders

    def _producer_orders_fused(self) -> np.ndarray:
        """What ``_producer_orders`` gives, in one kernel pass over the producers' rows."""
        f, fb, pr = self.firms, self.fb, self.producers
        nd, hv = self._magnet_recipe(pr)
        return self._k.orders.producer_orders(
            self._pr_sep,
            self._pr_mag,
            f.capacity,
            f.ramp_cap,
            f.ramp_left,
            max(fb.ramp_up_months, 1),
            f.active,
            f.idle,
            f.exp_sales,
            f.stock,
            f.basket,
            f.run_rate,
            nd,
            hv,
            float(fb.producer_stock_months),
            PROBE_SHARE,
            float(self.mk.separation_yield),
            float(fb.inventory_base_months),
            float(fb.inventory_adjust_months),
        )

    def _manufacturer_orders(self, per_c: np.ndarray, r_eff: np.ndarray) -> tuple:
        """Manufacturers' need, orders and a contiguous copy of their stock (numpy engine)."""
        f, fb, mf, mj = self.firms, self.fb, self.makers, self._mj
        need = self._monthly_use * np.take(per_c, self._c_mf, axis=0)
        # target = base + risk_months * sensitivity * r_eff; orders = max(need + gap, 0) where
        # need > 0, gap = (target * need - stock) / adjust_months (in place)
        gap = np.take(r_eff[:, mj] * fb.inventory_risk_months, self._c_mf, axis=0)
        gap *= f.risk_sensitivity[mf, None]
        gap += fb.inventory_base_months
        gap *= need
        # manufacturers' stock of those items, copied once into a contiguous array for this
        # month's arithmetic (a column slice of the (N, I) array is strided and 4 times slower);
        # settlement works on the copy and writes it back
        stock_mf = np.ascontiguousarray(f.stock[mf, mj])
        gap -= stock_mf
        gap /= fb.inventory_adjust_months
        gap += need
        np.maximum(gap, 0.0, out=gap)
        gap *= need > 0  # no order where nothing is needed (gap >= 0: the same as a where)
        return need, gap, stock_mf  # orders: (M, items manufacturers use)

    # ------------------------------------------------------------------ 5. market

    def _preference(self) -> np.ndarray:
        """(I, C exporter, C importer) weights importers give exporters when they ask for goods.

        ``(1 - stickiness) + stickiness * last month's share`` keeps trade relationships (buyers
        return to their suppliers), times ``1 - risk_avoidance * risk`` so buyers turn away from
        suppliers they perceive as risky (the mean perceived risk of the importer's buyers).
        """
        mk = self.mk
        share = np.transpose(self.supplier_share, (0, 2, 1))  # (I, exporter, importer)
        risk = self.risk_by_country().T[None, :, :]  # (1, exporter, importer)
        return ((1.0 - mk.trade_stickiness) + mk.trade_stickiness * share) * (
            1.0 - mk.risk_avoidance * risk
        )

    def _seller_mask(self) -> np.ndarray:
        """(P, I) 1.0 where a producer sells the item (its output stage), else 0.0."""
        k = self.firms.kind[self.producers]
        m = np.zeros((self.P, I))
        m[:, 0:3] = (k == FirmKind.MINER)[:, None]
        m[:, 3:6] = ((k == FirmKind.SEPARATOR) | (k == FirmKind.RECYCLER))[:, None]
        m[:, 6:8] = (k == FirmKind.MAGNET_MAKER)[:, None]
        return m

    def _seller_reserve(self) -> np.ndarray:
        """(C, I) working stock sellers want to hold (producer_stock_months of expected sales)."""
        pr = self.producers
        want = self.fb.producer_stock_months * self.firms.exp_sales[pr] * self._sell_mask
        return self.by_country(want, pr)

    def _new_prices(self, clearings, supply, demand, rules, reserve) -> np.ndarray:
        """(I, C) next month's prices.

        Oxides move by tatonnement, derived items by anchor and premium, all followed by
        arbitrage (see docs/ODD.md, submodel "Prices").
        """
        mk = self.mk
        unmet = stacked(clearings, "unmet")
        unsold = stacked(clearings, "unsold")
        z = (unmet - np.maximum(unsold - reserve.T, 0.0)) / (demand.T + supply.T + 1e-9)
        # np.clip without its wrapper (about 5 us): the same values
        step = np.minimum(
            np.maximum(mk.price_adjust_speed * z, -0.5 * mk.max_monthly_log_change),
            mk.max_monthly_log_change,
        )
        floor = self._price_floor
        flows = stacked(clearings, "flows")
        spare = stacked(clearings, "spare_exports")
        binding = stacked(clearings, "quota_binding")
        _quota, access, _leaky, tax = rules

        # the open routes of every item, built once; each pass pulls its own items' prices
        links = arbitrage_links(flows, spare, supply.T, binding, access, tax)

        def link(ix, logp):  # ix: a slice or a list of items
            return arbitrage_pull(logp, tuple(a[ix] for a in links), mk.arbitrage_strength)

        new = np.empty_like(self.price)
        # the oxide and concentrate rows are contiguous: slices (views) instead of index lists
        ox, cn = slice(OXIDE[0], OXIDE[-1] + 1), slice(CONC[0], CONC[-1] + 1)
        logp = np.log(np.maximum(self.price[ox], floor[ox])) + step[ox]
        new[ox] = np.maximum(np.exp(link(ox, logp)), floor[ox])
        # concentrate and magnets: a cost-linked anchor times a scarcity premium that moves with
        # the item's own excess demand and fades; concentrate never costs more than its oxide
        anchors = np.log(np.maximum(self._anchors(new), 1e-9))
        der = _DERIVED  # an index array: indexing with it skips converting a list each time
        keep = self.__dict__.get("_premium_keep")
        if keep is None:  # 1 - decay per derived item, fixed for the run
            decay = np.full(len(der), mk.premium_decay)
            if mk.concentrate_premium_decay >= 0:  # concentrate's own decay (payables, 7.7)
                decay[: len(CONC)] = mk.concentrate_premium_decay
            keep = self._premium_keep = (1.0 - decay[:, None]).copy()
        self.premium[der] = (self.premium[der] + step[der]) * keep
        conc_cap = np.log(np.maximum(mk.separation_yield * new[ox], 1e-9))
        capped = np.minimum(anchors[cn] + self.premium[cn], conc_cap)
        self.premium[cn] = capped - anchors[cn]
        logp = anchors[der] + self.premium[der]
        logp = link(der, logp)
        logp[: len(CONC)] = np.minimum(logp[: len(CONC)], conc_cap)
        new[der] = np.maximum(np.exp(logp), floor[der])
        return new

    def _anchors(self, price: np.ndarray) -> np.ndarray:
        """(I, C) cost-linked anchors for the derived items.

        Concentrate: a payable share of the oxide it contains (the oxide price times the
        separation yield), the share fixed at its start value, as concentrate is sold in
        practice; separators and miners share the oxide price risk in proportion. Magnets: the
        cost of their oxide plus the price-setter's conversion cost, times the start markup.
        Both are calibrated so that, at start prices, anchor = start price.
        """
        # all concentrates and both magnet grades at once (the same products and sums per row)
        conc_k, nd_k, hv_k = self._anchor_coef
        out = np.zeros_like(price)
        out[CONC[0] : CONC[-1] + 1] = conc_k * price[OXIDE[0] : OXIDE[-1] + 1]
        oxide = nd_k * price[4] + hv_k * price[5]
        out[MAG_STD : MAG_HT + 1] = (oxide + self._conversion) * self._magnet_markup[:, None]
        return np.maximum(out, self._price_floor)

    def _offtake_terms(self) -> dict[int, tuple]:
        """Offtake contracts in force by item: (seller, buyer, firm, t a month, price) arrays."""
        by_item: dict[int, list] = {}  # in order of the measures
        for m in self.policy.of_type("offtake"):
            by_item.setdefault(m.params["_item"], []).append(m)
        out = {}
        for i, ms in by_item.items():
            arrays = (
                np.array([m.params["_country"] for m in ms]),
                np.array([COUNTRIES.index(m.params["buyer"]) for m in ms]),
                np.array([m.params["_firm"] for m in ms]),
                np.array([m.params["t_per_year"] / 12.0 for m in ms]),
                np.array([m.params["price_usd_per_kg"] for m in ms]),
            )
            for a in arrays:
                a.flags.writeable = False
            out[i] = arrays
        return out

    @staticmethod
    def _contracts_of(terms: tuple, offers: np.ndarray) -> tuple[Contracts, np.ndarray]:
        """An item's contracts this month: a named seller firm delivers at most what it offers."""
        seller, buyer, firm, t, price = terms
        t = np.where(firm >= 0, np.minimum(t, offers[np.maximum(firm, 0)]), t)
        return Contracts(seller, buyer, t, price), firm

    def _clear_markets(self, orders: dict) -> dict:
        f, mk = self.firms, self.mk
        offers = f.stock[self.producers] * self._sell_mask  # (P, I): sellers are producers
        supply = self.by_country(offers, self.producers)
        demand = self.by_country(orders["orders"], self.producers)
        demand[:, self._mj] += self.sum_makers(orders["orders_mf"])
        supply += orders["release"]
        demand += orders["buy"]
        rule_arrays = self.policy.rule_arrays(self.month, np.maximum(demand - supply, 0.0))
        quota_t, access, leaky, tax = rule_arrays
        reserve = self._seller_reserve()
        terms = self.policy.memo("offtake_terms", self._offtake_terms)  # fixed while in force
        contract_firms = [
            self._contracts_of(terms[i], offers[:, i]) if i in terms else _NO_CONTRACTS
            for i in range(I)
        ]
        clearings: list[Clearing] = clear_items(
            supply.T,
            demand.T,
            self.price,
            quota_t,
            access,
            leaky,
            tax,
            [c for c, _ in contract_firms],
            preference=self._preference(),
            leakage_premium=mk.leakage_premium,
            transport_share=mk.transport_cost_share,
            home_bias=mk.home_bias,
            kernels=self._k,
        )
        new_price = self._new_prices(clearings, supply, demand, rule_arrays, reserve)
        self.price = new_price
        return {
            "offers": offers,
            "supply": supply,
            "demand": demand,
            "rule_arrays": rule_arrays,
            "clearings": clearings,
            "contracts": contract_firms,
        }

    # ------------------------------------------------------------------ 6. settlement

    def _holdings(self) -> np.ndarray:
        # for the conservation check only: a matrix-vector product sums columns in one pass
        stock = self._ones_n @ self.firms.stock
        pile = np.array([st.stockpile_t for st in self.states]).sum(axis=0)
        stock[3:6] += pile
        return stock

    def _money(self) -> float:
        return float(
            self.firms.cash.sum()
            + sum(st.budget_usd for st in self.states)
            + self.finance_pool.sum()
        )

    def _consumed_content(self, made: np.ndarray) -> np.ndarray:
        """(items manufacturers use, G) t REO per t of each item they use up this month.

        The fixed content of each item, except that with Dy/Tb thrifting in the recipe a magnet
        carries the Dy/Tb of the recipe it was made with: the world's magnet makers' Dy/Tb
        intensity weighted by this month's magnet output (``made``, producers' output by item;
        the vintage of magnets held in stock is not tracked).
        """
        mj = self._mj
        content = self.reo_per_item[mj]
        if not self.fb.heavy_thrift_in_magnets:
            return content
        mags = made[:, MAG_STD] + made[:, MAG_HT]
        total = float(mags.sum())
        if total <= 0:
            return content
        heavy = GOODS.index("heavy")
        k = float(mags @ self.intensity_c[self.firms.country[self.producers], heavy]) / total
        content = content.copy()
        content[[MAG_STD - mj.start, MAG_HT - mj.start], heavy] *= k
        return content

    def _settle(self, plan: dict, orders: dict, market: dict) -> None:
        f = self.firms
        pr, mf = self.producers, self.makers
        # the fused kernels (abm.kernels.settle), unless this numpy adds its row sums in
        # another order than they do (then the numpy code below: the same results)
        kern = self._k.settle if self._k is not None and self._k.settle.matches_numpy() else None
        goods_before = self._holdings()
        money_before = self._money()
        ext_in0, ext_out0 = self.external_in, self.external_out

        # production (firms' stock and cash move with the sales below, in _producer_trade)
        self.external_out += float(plan["cost"].sum())
        ones_p = self._ones_n[pr]  # column sums by matrix-vector products (conservation only)
        produced = ones_p @ plan["out"] - ones_p @ plan["used"]
        # restart costs decided last month (paid in _producer_trade)
        restart = bool(self.restart_due.any())  # producers only
        if restart:
            self.external_out += float(self.restart_due.sum())

        # market transfers, all items at once: sellers in a country share its sales pro rata
        # to what they offered (after contract deliveries from named firms, which come first);
        # buyers in a country share its purchases pro rata to their orders
        cls: list[Clearing] = market["clearings"]
        offers, sup, dem = market["offers"], market["supply"], market["demand"]
        sold_c = stacked(cls, "sold").T  # (C, I)
        bought_c = stacked(cls, "bought").T
        pool_rev = stacked(cls, "seller_got").sum(axis=2).T
        paid_c = stacked(cls, "buyer_paid").sum(axis=1).T
        pool_t, pool_supply = sold_c.copy(), sup.copy()
        firm_t = np.zeros((self.P, I))
        firm_rev = np.zeros((self.P, I))
        for i, (cl, (contracts, cfirms)) in enumerate(zip(cls, market["contracts"], strict=True)):
            for k in (cfirms >= 0).nonzero()[0] if cfirms.size else ():  # named seller firms
                r, x = int(cfirms[k]), int(contracts.seller[k])
                firm_t[r, i] += cl.contract_t[k]
                firm_rev[r, i] += cl.contract_seller_got[k]
                pool_t[x, i] -= cl.contract_t[k]
                pool_rev[x, i] -= cl.contract_seller_got[k]
                pool_supply[x, i] -= cl.contract_t[k]
        frac = np.where(pool_supply > 1e-12, pool_t / np.maximum(pool_supply, 1e-12), 0.0)
        per_t = np.where(pool_t > 1e-12, pool_rev / np.maximum(pool_t, 1e-12), 0.0)
        fill = np.where(dem > 1e-12, bought_c / np.maximum(dem, 1e-12), 1.0)  # (C, I)
        cost_t = np.where(bought_c > 1e-12, paid_c / np.maximum(bought_c, 1e-12), 0.0)
        trade = (offers, firm_t, firm_rev, frac, per_t, fill, cost_t, orders["orders"])
        if kern is not None:  # the same arithmetic, fused
            sold_all, rev_all, rev_n = kern.producer_trade(
                f.stock,
                f.cash,
                plan["out"],
                plan["used"],
                plan["cost"],
                self.restart_due,
                *trade,
                self._c_pr,
            )
        else:
            sold_all, rev_all, rev_n = self._producer_trade(plan, restart, *trade)
        if restart:
            self.restart_due[:] = 0.0
        revenue = self.by_country(rev_n, pr)
        mj = self._mj
        stock_mf = orders["stock_mf"]  # contiguous copy, written back below
        if kern is None:
            got = orders["orders_mf"] * np.take(fill[:, mj], self._c_mf, axis=0)
            manuf_paid = np.einsum("ni,ni->n", got, np.take(cost_t[:, mj], self._c_mf, axis=0))
            stock_mf += got
            f.cash[mf] -= manuf_paid
        self.fill = fill
        # which items have releases, purchases or export tax this month (adding zeros is exact)
        rel_any = orders["release"].any(axis=0)
        buy_any = orders["buy"].any(axis=0)
        tax_any = stacked(cls, "tax_got").any(axis=1)
        for i, cl in enumerate(cls):
            g = ITEM_GOOD[i]
            if rel_any[i]:  # state stockpile releases share the pool
                rel = orders["release"][:, i]
                sold_rel = frac[:, i] * rel
                income = sold_rel * per_t[:, i]
                # the income is the owners' (a joint stockpile may sell in a partner's market)
                revenue += self._charge_release(orders, g, sold_rel, income)
            if buy_any[i]:  # state stockpile purchases (Python floats: the same arithmetic)
                buy = orders["buy"][:, i].tolist()
                fill_i, cost_i = fill[:, i].tolist(), cost_t[:, i].tolist()
                for st_i in range(C):
                    if buy[st_i]:
                        q = buy[st_i] * fill_i[st_i]
                        self.states[st_i].stockpile_t[g] += q
                        self.states[st_i].budget_usd -= q * cost_i[st_i]
            if tax_any[i]:
                for x in cl.tax_got.nonzero()[0]:
                    self.states[x].budget_usd += cl.tax_got[x]
                revenue += cl.tax_got
            self.external_out += cl.freight
        # price floors on one oxide: the state tops up the seller's realised price
        for r in (f.price_floor[pr] > 0).nonzero()[0]:
            ox = OXIDE[int(f.price_floor_good[r])]
            t = sold_all[r, ox]
            if t <= 0:
                continue
            realised = rev_all[r, ox] / (t * KG_PER_T)
            top = max(0.0, f.price_floor[r] - realised) * t * KG_PER_T
            payer = self._floor_payer(r)
            f.cash[r] += top
            self.states[payer].budget_usd -= top
            self.states[payer].spent_usd += top
        # manufacturers recover what they paid for inputs from their customers (pass-through);
        # consumption and lost output: each input serves its own product lines, so a shortfall
        # of one input stops the output that depends on it (its REO content times value per kg)
        need = orders["need"]  # (M, items manufacturers use)
        if kern is not None:  # purchases, pass-through, the stock check and consumption, fused
            manuf_paid, use, short, use_blocks, bad = kern.maker_settle(
                f.stock,
                f.cash,
                orders["orders_mf"],
                stock_mf,
                need,
                fill,
                cost_t,
                self._c_mf,
                self.P,
                mj.start,
                _NO_BLOCKS if self._mf_reduce is None else self._mf_reduce[1],
            )
            self.external_in += float(manuf_paid.sum())
            if bad >= 0:
                self._negative_maker_stock(bad)
            if self._mf_reduce is not None:  # sum_makers(use), added in the kernel
                use_c = np.zeros((C, use.shape[1]))
                use_c[self._mf_reduce[0]] = use_blocks
            else:
                use_c = self.sum_makers(use)
        else:
            f.cash[mf] += manuf_paid
            self.external_in += float(manuf_paid.sum())
            if stock_mf.min(initial=0.0) < -1e-6:  # buyers cannot hold less than nothing
                self._negative_maker_stock(int(np.argmin(stock_mf.min(axis=1))))
            use = np.minimum(stock_mf, need)
            stock_mf -= use
            f.stock[mf, mj] = stock_mf
            short = need - use
            use_c = self.sum_makers(use)
        consumed = np.zeros(I)
        consumed[mj] = self._ones_n[mf] @ use  # for the conservation check only
        # lost output: REO short (t) x US$ per kg x 1000, split by sector mix, per country
        lost_cs = self.sum_makers_weighted(short @ self._reo_total[mj], self._lost_weight)
        cons_cg = use_c @ self._consumed_content(plan["out"])

        # miners dump co-products they cannot sell beyond the holding limit (tailings), the
        # recycling subsidy is paid, and projects under construction spend their capex
        sub = self.recycling_subsidy()
        with_pay = bool(sub.any())
        if kern is not None:  # the same arithmetic, fused
            discard, pay, spend = kern.producer_close(
                f.stock,
                f.cash,
                plan["hold_limit"],
                plan["recycled"],
                sub,
                with_pay,
                KG_PER_T,
                self._c_pr,
                f.proj_size,
                f.proj_capex_left,
                f.proj_left,
            )
        else:
            pay = plan["recycled"] * KG_PER_T * sub[f.country[pr]] if with_pay else None
            discard, spend = self._producer_close(plan["hold_limit"], pay)
        consumed = consumed + ones_p @ discard
        if with_pay:
            by_c = self.by_country(pay, pr)
            for c in sub.nonzero()[0]:
                self.states[c].budget_usd -= by_c[c]
                self.states[c].spent_usd += by_c[c]
        self.external_out += float(spend.sum())

        # conservation
        goods_after = self._holdings()
        expected = goods_before + produced - consumed
        self._check_goods(goods_after, expected, goods_before)
        money_after = self._money()
        d_ext = (self.external_in - ext_in0) - (self.external_out - ext_out0)
        scale = max(abs(money_before), 1.0)
        if abs(money_after - (money_before + d_ext)) > 1e-6 * scale + 1.0:
            raise ConservationError(
                f"money not conserved in {self.date}: before {money_before:.2f}, after "
                f"{money_after:.2f}, external net {d_ext:.2f}"
            )
        recycler = self._pr_rec
        if kern is not None:  # the expected sales (last line below) and the output tables' terms
            made, rec_g = kern.expect_sales(
                f.exp_sales,
                sold_all,
                self._sell_mask,
                SALES_EXPECTATION_SPEED,
                plan["out"],
                plan["recycled"],
                f.basket,
                recycler,
            )
        else:
            made = plan["out"] * ~recycler[:, None]
            rec_g = plan["recycled"][:, None] * f.basket[pr] * recycler[:, None]
        production = self.by_country(made, pr)
        rec_cg = self.by_country(rec_g, pr)
        access = market["rule_arrays"][1]
        cached = self.__dict__.get("_restriction_cache")  # (access, restriction)
        if cached is None or cached[0] is not access:  # access is shared while rules stand
            restriction = self._restriction_of(access)
            restriction.flags.writeable = False  # kept in restr_hist and MonthFlows
            cached = self._restriction_cache = (access, restriction)
        restriction = cached[1]
        self.lost_hist.append(lost_cs.sum(axis=1))
        self.restr_hist.append(restriction)
        self.flows = MonthFlows(
            production=production,
            recycled=rec_cg,
            consumption=cons_cg,
            clearings=market["clearings"],
            lost_usd=lost_cs,
            revenue=revenue,
            restriction=restriction,
        )
        self._market = market
        if kern is None:
            f.exp_sales[pr] += (
                SALES_EXPECTATION_SPEED * (sold_all - f.exp_sales[pr]) * self._sell_mask
            )

    def _producer_trade(
        self, plan, restart, offers, firm_t, firm_rev, frac, per_t, fill, cost_t, orders
    ) -> tuple:
        """Producers' output, restart costs, pool sales and purchases (numpy engine).

        Moves their stock and cash; returns (sold, revenue) by item, (P, I), and revenue per
        producer, (P,).
        """
        f, pr = self.firms, self.producers
        # production
        f.stock[pr] += plan["out"] - plan["used"]
        f.cash[pr] -= plan["cost"]
        if restart:  # restart costs decided last month
            f.cash[pr] -= self.restart_due[pr]
        # the pool's sales: each seller's share of what it offered, at the pool's price
        rest = np.take(frac, self._c_pr, axis=0) * (offers - firm_t)
        sold_all = firm_t + rest
        rev_all = firm_rev + rest * np.take(per_t, self._c_pr, axis=0)
        f.stock[pr] -= sold_all
        rev_n = rev_all.sum(axis=1)
        f.cash[pr] += rev_n
        # purchases: the fill of their country's orders, at its cost per tonne
        got = orders * np.take(fill, self._c_pr, axis=0)
        f.stock[pr] += got
        f.cash[pr] -= np.einsum("ni,ni->n", got, np.take(cost_t, self._c_pr, axis=0))
        return sold_all, rev_all, rev_n

    def _producer_close(self, lim: np.ndarray, pay: np.ndarray | None) -> tuple:
        """Miners' discard beyond the holding limit, recycling subsidy and capex (numpy engine).

        Returns:
            (discard (P, I), capex spent (P,)).
        """
        f, pr = self.firms, self.producers
        discard = np.where(lim > 0, np.maximum(f.stock[pr] - lim, 0.0), 0.0)
        f.stock[pr] -= discard
        if pay is not None:
            f.cash[pr] += pay
        building = f.proj_size[pr] > 0  # producers only (manufacturers never build)
        left = f.proj_capex_left[pr]
        spend = np.where(building, left / np.maximum(f.proj_left[pr], 1), 0.0)
        left -= spend
        f.cash[pr] -= spend
        return discard, spend

    def _negative_maker_stock(self, r: int) -> None:
        """Raise ConservationError for manufacturer ``r`` (buyers cannot hold less than nothing)."""
        raise ConservationError(f"negative stock in {self.date}: manufacturer {self.P + r}")

    @staticmethod
    def _restriction_of(access: np.ndarray) -> np.ndarray:
        """(C, C) share of x's exports to y blocked, from this month's (I, C, C) access shares.

        The same as :meth:`_restriction` on the month's rules (a maximum over items is exact).
        """
        r = np.maximum(np.max(1.0 - access, axis=0), 0.0)
        np.fill_diagonal(r, 0.0)
        return r

    @staticmethod
    def _restriction(rules) -> np.ndarray:
        """(C, C) share of x's exports to y blocked, from this month's rules.

        The same as ``PolicyState.restriction_matrix`` (which builds the rules again): access
        does not depend on the import demand the rules were built with.
        """
        r = np.zeros((C, C))
        for rule in rules:
            r = np.maximum(r, 1.0 - rule.access)
        np.fill_diagonal(r, 0.0)
        return r

    def _charge_release(self, orders, g, sold_by_market, income_by_market) -> np.ndarray:
        """Take released tonnes out of the owners' stockpiles and pay them (pro rata).

        Returns:
            (C,) the income each owner received, US$.
        """
        rel_from = orders["release_from"][:, g]
        tot = rel_from.sum()
        by_owner = np.zeros(C)
        if tot <= 0:
            return by_owner
        sold = sold_by_market.sum()
        income = income_by_market.sum()
        for s in rel_from.nonzero()[0]:
            share = rel_from[s] / tot
            self.states[s].stockpile_t[g] -= sold * share
            self.states[s].budget_usd += income * share
            by_owner[s] += income * share
        return by_owner

    def _floor_payer(self, row: int) -> int:
        name = self.scenario.named_firms[int(self.firms.named[row])].name
        for m in self.policy.of_type("price_floor"):
            if m.params["firm"] == name:
                return COUNTRIES.index(m.params["country"])
        return int(self.firms.country[row])

    def _check_goods(self, after, expected, before) -> None:
        """Raise ConservationError unless every item's holdings moved only by production and use.

        ``expected`` is holdings before plus output minus inputs used (separation losses are
        inside that) minus consumption, so market transfers must net to zero exactly.
        """
        f = self.firms
        lo = float(f.stock.min())
        # stocks never hold -0.0 (they start at +0.0 and only add and subtract), so when none
        # is negative the clip below would change nothing: skip it and the max
        hi = float(f.stock.max()) if lo < 0 else 0.0
        if lo < -1e-6 * (1.0 + max(hi, -lo)):
            r, i = np.unravel_index(np.argmin(f.stock), f.stock.shape)
            raise ConservationError(
                f"negative stock in {self.date}: firm {r} item {ITEMS[i]} = {f.stock[r, i]:.6f} t"
            )
        if min(min(st.stockpile_t.tolist()) for st in self.states) < -1e-6:
            for st in self.states:
                if (st.stockpile_t < -1e-6).any():
                    raise ConservationError(f"negative stockpile of {st.name} in {self.date}")
        scale = max(float(np.abs(before).sum()), 1.0)
        gap = after - expected
        if np.abs(gap).max() > 1e-7 * scale + 1e-6:
            i = int(np.argmax(np.abs(gap)))
            raise ConservationError(
                f"goods not conserved in {self.date}: {ITEMS[i]} off by {gap[i]:.6f} t"
            )
        if lo < 0:
            np.clip(f.stock, 0.0, None, out=f.stock)

    # ------------------------------------------------------------------ 7. learning

    def _refresh_expectations(self, first: bool = False) -> None:
        """Update price expectations and each producer's operating and full-cost margins."""
        fb, mk = self.fb, self.mk
        pr = self.producers
        full_st = self.firms
        f = _Rows(
            n=self.P,
            kind=full_st.kind[pr],
            country=full_st.country[pr],
            basket=full_st.basket[pr],
            ht_share=full_st.ht_share[pr],
            price_floor=full_st.price_floor[pr],
            price_floor_good=full_st.price_floor_good[pr],
            unit_cost=full_st.unit_cost[pr],
            expected_margin=full_st.expected_margin[pr],
        )
        if not first:
            self.exp_price += fb.expectation_speed * (self.price - self.exp_price)
        price = self.exp_price
        if first or not hasattr(self, "_value_coef"):  # baskets and grade mixes are fixed
            self._value_coef = value_coefficients(f, mk)
        coef = self._value_coef
        if fb.heavy_thrift_in_magnets:  # a magnet's Dy/Tb follows its maker's country's intensity
            coef = coef.copy()
            coef[self._pr_mag, OXIDE[2]] = -self._magnet_recipe(pr)[1][self._pr_mag]
        value = output_value_usd_per_kg(f, price, mk, coef)
        floor = (f.price_floor > 0).nonzero()[0]
        if floor.size:  # a guaranteed price tops up the covered oxide's value
            g = f.price_floor_good[floor].astype(np.intp)
            gain = np.maximum(f.price_floor[floor] - price[OXIDE[0] + g, f.country[floor]], 0.0)
            value[floor] += gain * f.basket[floor, g]
        sub = self.recycling_subsidy()
        if sub.any():
            value[self._pr_rec_rows] += sub[self._pr_rec_country]
        full = f.unit_cost + self._capital_per_kg()
        margin = (value - full) / np.maximum(full, 1e-9)
        if not hasattr(self, "_op_margin"):
            self._op_margin = np.zeros(self.firms.n)  # manufacturers stay at 0
        self._op_margin[pr] = (value - f.unit_cost) / np.maximum(f.unit_cost, 1e-9)
        if first:
            f.expected_margin[:] = margin
        else:
            f.expected_margin += fb.expectation_speed * (margin - f.expected_margin)

    def _capital_per_kg(self) -> np.ndarray:
        """(P,) producers' capital charge per kg of output (cached per tech-ban cost multiple)."""
        _extra, mult = self.tech_ban()
        key = mult.tobytes()
        if getattr(self, "_capital_key", None) != key:  # the capital charge, per kg of output
            processing = self._pr_processing
            country = self.firms.country[self.producers]
            capital = self._capex[self.producers] * np.where(processing, mult[country], 1.0)
            self._capital = capital * CAPITAL_RECOVERY_PER_YEAR / KG_PER_T
            self._capital_key = key
        return self._capital

    def _learn_producers(self) -> None:
        """Producers' expectations, losses, idling, restarts, bankruptcy and recycling growth."""
        f, fb = self.firms, self.fb
        if self.fb.learning_rate > 0:
            self._entrant_learning()
        self._refresh_expectations()
        # producers only (rows < P): manufacturers never produce, idle, build or go bankrupt,
        # so their rows would stay as they are; the views below write through to the arrays
        pr = self.producers
        active, idle, cap = f.active[pr], f.idle[pr], f.capacity[pr]
        op_margin, loss = self._op_margin[pr], f.loss_months[pr]
        producing = active & ~idle & (cap > 0)
        losing = producing & (op_margin < 0)
        loss[:] = np.where(losing, loss + 1, np.where(producing, 0, loss))
        must_run = self._must_run_n[pr]
        # only mines and recyclers shut down: a separator or magnet maker squeezed by its input
        # price buys less (its run rate falls) but still processes the feed it holds
        shuts = self._can_shut[pr]
        to_idle = producing & shuts & ~must_run & (loss >= fb.idle_after_loss_months)
        idle |= to_idle
        restart = idle & active & (op_margin > 0.1) & (f.expected_margin[pr] > -0.2)
        if restart.any():
            self.restart_due[pr] += np.where(
                restart, fb.restart_cost_share * cap * KG_PER_T * f.unit_cost[pr], 0.0
            )
            idle &= ~restart
            loss[restart] = 0
        loss += idle  # one more month idle
        debt_limit = fb.bankrupt_debt_years * cap * KG_PER_T * f.unit_cost[pr]
        broke = active & (f.cash[pr] < -debt_limit) & (loss >= fb.bankrupt_after_loss_months)
        if broke.any():
            broke = broke.nonzero()[0]  # producers are the first rows: the same indices
            self.bankruptcies += np.bincount(f.country[broke], minlength=C)
            # assets pass to a new owner as an undeveloped prospect; creditors write off debt
            self.external_in += float(-f.cash[broke].sum())
            f.cash[broke] = 0.0
            f.prospect_size[broke] = f.capacity[broke]
            f.capacity[broke] = 0.0
            f.active[broke] = False
            f.idle[broke] = False
            f.prospect[broke] = True
            f.bankrupt_month[broke] = self.month
            f.permitted[broke] = True  # an existing site keeps its permits
            f.proj_size[broke] = 0.0
            f.proj_capex_left[broke] = 0.0
        bad = f.proj_bad_months[pr]
        bad[:] = np.where((f.proj_size[pr] > 0) & (f.expected_margin[pr] < 0), bad + 1, 0)
        # recycling capacity grows while recycling pays
        rec = self._pr_rec & active
        if rec.any():
            grow = np.minimum(np.maximum(op_margin, 0.0), 1.0) * fb.recycling_growth_per_month
            cap[:] = np.where(rec, cap * (1.0 + grow), cap)

    def _learn_producers_fused(self) -> None:
        """What ``_learn_producers`` does, in one kernel pass over the producers' rows."""
        f, fb, pr = self.firms, self.fb, self.producers
        self.exp_price += fb.expectation_speed * (self.price - self.exp_price)
        thrift = bool(fb.heavy_thrift_in_magnets)
        # Dy/Tb thrifting: a magnet maker's Dy/Tb coefficient is its current recipe's (negated)
        hv = self._magnet_recipe(pr)[1] if thrift else self._op_margin
        if self._k.learn.einsum_order():  # the kernel adds up the value as np.einsum does
            value = _EMPTY
        else:  # a numpy build whose einsum adds in another order: numpy adds, as in the numpy code
            coef = self._value_coef
            if thrift:
                coef = coef.copy()
                coef[self._pr_mag, OXIDE[2]] = -hv[self._pr_mag]
            value = np.einsum("ni,ni->n", coef, np.take(self.exp_price.T, self._c_pr, axis=0))
        sub = self.recycling_subsidy()
        learns = fb.learning_rate > 0
        # Wright's law factors, by numpy's power as on the numpy engine (see _wright)
        wright = self._wright(self._entrant[: self.P] & (self._units > 0))[3] if learns else _EMPTY
        n_broke, broke_cash, broke_c = self._k.learn.producer_learning(
            self._pr_mag,
            self._pr_rec,
            self._c_pr,
            f.basket,
            f.price_floor,
            f.price_floor_good,
            self.exp_price,
            self._value_coef,
            thrift,
            hv,
            value,
            sub,
            bool(sub.any()),
            self._capital_per_kg(),
            float(fb.expectation_speed),
            learns,
            self._entrant,
            self._units,
            self._cum_units,
            self._cost0,
            wright,
            float(fb.learning_floor_share),
            f.unit_cost,
            f.expected_margin,
            self._op_margin,
            f.active,
            f.idle,
            f.capacity,
            f.loss_months,
            self._must_run_n,
            self._can_shut,
            float(fb.idle_after_loss_months),
            float(fb.restart_cost_share),
            self.restart_due,
            float(fb.bankrupt_debt_years),
            f.cash,
            float(fb.bankrupt_after_loss_months),
            f.prospect_size,
            f.prospect,
            f.bankrupt_month,
            f.permitted,
            f.proj_size,
            f.proj_capex_left,
            f.proj_bad_months,
            int(self.month),
            float(fb.recycling_growth_per_month),
            KG_PER_T,
            C,
        )
        if n_broke:  # creditors write off the bankrupt firms' debt
            self.bankruptcies += broke_c
            self.external_in += float(-broke_cash.sum())

    def _learn(self) -> None:
        fb = self.fb
        flows = self.flows
        # risk perception: decay with the half-life, then shocks from restrictions
        decay = 0.5 ** (1.0 / fb.risk_half_life_months)
        self.risk_c *= decay
        self._risk_version += 1
        restr = flows.restriction.copy()  # (exporter, target)
        binding = stacked(flows.clearings, "quota_binding").any(axis=0).astype(float)
        restr = np.maximum(restr, fb.binding_quota_risk * binding[:, None] * self._off_c)
        coercers = np.zeros(C)
        for d in self.policy.active_disputes():
            if restr[d.coercer].max() > 0:
                coercers[d.coercer] = 1.0
        if restr.any() or coercers.any():
            # per country first (C x C), then to firms: what each buyer's country suffers, what
            # it sees others suffer (spillover), and the coercer's reputation
            by_c = (
                np.maximum(
                    np.maximum(restr.T, restr.max(axis=1)[None, :] * fb.risk_spillover),
                    coercers[None, :] * fb.reputation_weight,
                )
                * fb.risk_shock
            )  # (buyer country, exporter)
            np.fill_diagonal(by_c, 0.0)  # buyers do not fear their own country's exports
            # risk += shock * (1 - risk) (sellers, the miners, hold no risk: see firm_risk)
            self.risk_c += (1.0 - self.risk_c) * by_c
        # expectations, losses, idling, restarts, bankruptcy, recycling growth (per producer)
        if self._k is not None:  # the same arithmetic, fused (abm.kernels.learn)
            self._learn_producers_fused()
        else:
            self._learn_producers()
        # substitution and thrifting: driven by price and risk, never reversed
        pm = self.price[3:6].T / self.p0[3:6]  # (C, G) oxide price multiples
        trig = fb.substitution_price_trigger
        pressure = np.minimum(np.maximum((pm - trig) / trig, 0.0), 1.0) + self.rd_pressure
        n_m = self.makers_per_country  # fixed
        risk_cn = np.where(n_m > 0, self.risk_c[:, CHINA], 0.0)  # manufacturers' risk of China
        risk_cn[CHINA] = 0.0
        pressure = np.minimum(np.maximum(pressure + 0.5 * risk_cn[:, None], 0.0), 1.0)
        cut = 1.0 - self._substitution_rate * pressure
        self.intensity_c = np.maximum(self.intensity_c * cut, self._substitution_floor)
        self.rd_pressure *= 0.9
        # supplier shares (for risk weighting and dependence)
        fl = stacked(flows.clearings, "flows")  # (I, exporter, buyer)
        bought = fl.sum(axis=1)  # (I, buyer)
        # concentrate each country imported (t/yr), a 12-month moving mean: a separation plan
        conc = fl[0:3].sum(axis=0)  # (exporter, buyer)
        imp = 12.0 * (conc.sum(axis=0) - conc.diagonal())
        first = np.isnan(self._conc_imports)
        self._conc_imports = np.where(
            first, imp, self._conc_imports + (imp - self._conc_imports) / 12.0
        )
        self.supplier_share = np.where(
            bought[:, :, None] > 1e-12,
            np.transpose(fl, (0, 2, 1)) / np.where(bought > 1e-12, bought, 1.0)[:, :, None],
            self.supplier_share,
        )
        # disputes: the target concedes when its pain outweighs its resolve
        for d in self.policy.active_disputes():
            if self.pain(d.target, d.coercer) > self.resolve(d.target):
                self._concede(d)
        # strategies learn from realised payoffs (a no-op for scripted and rule)
        for st in self.states:
            if st.strategy.learns:
                st.last_payoff = self.payoff(st.index)
                st.strategy.learn(st.last_payoff)

    def industry_output(self, c: int) -> float:
        """US$ per year of a country's output that depends on rare earths.

        The scenario's ``industry_output_usd_per_year`` when set; otherwise its rare-earth use at
        the start (t REO) times the sector-weighted value at risk per kg.
        """
        cache = self.__dict__.setdefault("_industry_output", {})  # fixed for the run
        if c not in cache:
            cp = self.scenario.countries[c]
            if cp.industry_output_usd_per_year > 0:
                cache[c] = cp.industry_output_usd_per_year
            else:
                reo = float((self.use_c[c] @ self.reo_per_item).sum())
                value = sum(cp.sector_shares[s] * cp.value_at_risk_usd_per_kg[s] for s in SECTORS)
                value /= max(sum(cp.sector_shares.values()), 1e-9)
                cache[c] = reo * KG_PER_T * value
        return cache[c]

    def pain(self, c: int, coercer: int | None = None) -> float:
        """Lost output over the last three months as a share of the country's RE-using output.

        With ``coercer``, only months in which that state restricted ``c``'s supply count: the
        pain a dispute inflicts, not shortages the target would have had anyway.
        """
        out = self.industry_output(c) / 4.0
        if out <= 0 or not self.lost_hist:
            return 0.0
        if coercer is None:
            return float(sum(h[c] for h in self.lost_hist[-3:]) / out)
        months = zip(self.lost_hist[-3:], self.restr_hist[-3:], strict=True)
        return float(sum(h[c] for h, r in months if r[coercer, c] > 0) / out)

    def resolve(self, c: int) -> float:
        """Pain a target bears before conceding: base resolve, raised by stockpiles and allies."""
        cp = self.scenario.countries[c]
        use = self.use_c[c] @ self.reo_per_item  # t REO per year by good
        months = np.where(use > 0, self.states[c].stockpile_t / np.maximum(use / 12.0, 1e-9), 0)
        cover = float(months[use > 0].min()) if (use > 0).any() else 0.0
        allies = [a.strip() for a in cp.allies.split(",") if a.strip()]
        support = 0.5 if allies else 0.0
        return cp.resolve * (1.0 + cover / 6.0) * (1.0 + support)

    def _concede(self, d: Dispute) -> None:
        d.conceded_month = self.month
        self.policy.log.append(
            (self.month, COUNTRIES[d.target], f"{COUNTRIES[d.target]} conceded dispute {d.id}")
        )
        if self.concession is None:
            self.concession = (COUNTRIES[d.target], self.month)

    def payoff(self, c: int) -> float:
        """A state's realised payoff this month from its objective weights (for learning)."""
        w = self.scenario.countries[c].objectives
        flows = self.flows
        out = max(self.industry_output(c) / 12.0, 1.0)
        revenue = flows.revenue[c] / out
        industry = -flows.lost_usd[c].sum() / out
        security = float(self.fill[c].mean()) - 1.0
        political = 0.0
        for d in self.policy.disputes.values():
            if d.conceded_month == self.month:
                political += 1.0 if d.coercer == c else (-1.0 if d.target == c else 0.0)
        spent_before = self._spent_before[c] if hasattr(self, "_spent_before") else 0.0
        budget = -(self.states[c].spent_usd - spent_before) / out
        return (
            w["revenue"] * revenue
            + w["industry"] * industry
            + w["security"] * security
            + w["political"] * political
            + w["budget"] * budget
        )

    # ------------------------------------------------------------------ 8. data collection

    def _collect(self) -> None:
        if self.forecasting:
            return
        self.dates.append(self.date)
        record_month(self, self.recorder, self.month)

    # ------------------------------------------------------------------ running

    def fork(self) -> RareEarthModel:
        """A copy of the world for a forecast: state copied, scenario shared, no recording.

        The copy has its own generator (seeded from the current state of this one, which is not
        advanced), and its states do nothing new (bounded foresight: a forecasting state assumes
        the others keep their current measures).
        """
        new = copy.copy(self)
        new.forecasting = True
        new.firms = self.firms.copy()
        new.policy = copy.deepcopy(self.policy)
        for name in (
            "price",
            "exp_price",
            "premium",
            "fill",
            "supplier_share",
            "demand_mult",
            "finance_pool",
            "rd_pressure",
            "restart_due",
            "bankruptcies",
            "_op_margin",
            "_cum_units",
            "_cost0",
            "risk_c",
            "intensity_c",
            "_conc_imports",
        ):
            setattr(new, name, getattr(self, name).copy())
        new.lost_hist = list(self.lost_hist)
        new.restr_hist = list(self.restr_hist)
        new.rng = np.random.default_rng()
        new.rng.bit_generator.state = copy.deepcopy(self.rng.bit_generator.state)
        new.states = []
        for st in self.states:
            twin = copy.copy(st)
            twin.stockpile_t = st.stockpile_t.copy()
            twin.strategy = ScriptedStrategy()
            new.states.append(twin)
        return new

    def forecast(self, c: int, actions: list[dict], months: int) -> float:
        """State ``c``'s total payoff over ``months`` months if it takes ``actions`` now.

        Called during phase 2 of a month: the copy applies the actions, finishes this month
        (phases 3 to 8) and runs ``months - 1`` more.
        """
        new = self.fork()
        name = self.states[c].name
        for action in actions:
            new.apply_action(action, name)
        total = 0.0
        for k in range(max(months, 1)):
            if k > 0:
                new._apply_scheduled_events()
                new._states_decide()
            plan = new._plan_production()
            orders = new._set_orders(plan)
            market = new._clear_markets(orders)
            new._settle(plan, orders, market)
            new._learn()
            new.month += 1
            total += new.payoff(c)
        return total

    def run(self) -> None:
        """Step to the horizon."""
        while self.running and self.month < self.horizon:
            self.step()
