"""Speed and scale measurements (not tests: they never fail on speed).

Run ``python -m benchmarks`` (about two minutes on 2 cores) or ``python -m benchmarks --quick``.
Prints a table and, with ``--json PATH``, writes the figures as JSON. Three things are timed in
the same process so that their ratios mean something on any machine:

- Lanthanide's firm-months per second at 1,000, 10,000 and 100,000 firm agents (only
  ``model.step()`` is timed; building the population is excluded);
- Mesa's Boltzmann wealth model without a space (our own few lines, written after the example
  in Mesa's repository) at the same agent counts, in agent-steps per second;
- a plain numpy loop doing arithmetic of the same shape as our per-firm update (the lower bound
  for per-firm work in numpy), in firm-months per second;

plus the wall time of the default scenario with its counterfactual (192 months, 400 firms) and
peak traced memory of each measurement.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import tracemalloc

import mesa
import numpy as np

from abm.model import RareEarthModel
from abm.scenario import load_scenario


class _Wealthy(mesa.Agent):
    def __init__(self, model):
        super().__init__(model)
        self.wealth = 1

    def step(self):
        if self.wealth > 0:
            other = self.random.choice(self.model.agent_list)  # the model's seeded random
            other.wealth += 1
            self.wealth -= 1


class BoltzmannNoSpace(mesa.Model):
    """Mesa's simplest model: agents hand one unit of wealth to a random other agent."""

    def __init__(self, n: int, seed: int = 1):
        super().__init__(rng=seed)
        self.n = n
        for _ in range(n):
            _Wealthy(self)
        self.agent_list = list(self.agents)

    def step(self):
        self.agents.shuffle_do("step")


def _timed(fn):
    """Wall time of ``fn()`` (no tracing, so the timing is clean)."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _peak_mib(fn) -> float:
    """Peak memory traced while ``fn()`` runs, MiB (a separate run: tracing slows Python)."""
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def _lanthanide_months(n: int, months: int):
    model = RareEarthModel(load_scenario("default", firms=n, months=months))

    def go():
        for _ in range(months):
            model.step()
        mesa.Agent._ids.pop(model, None)

    return go


def bench_lanthanide(n: int, months: int) -> dict:
    _, wall = _timed(_lanthanide_months(n, months))
    peak = _peak_mib(lambda: _lanthanide_months(n, 2)())  # build plus two months, traced
    return {
        "firms": n,
        "months": months,
        "seconds": wall,
        "per_second": n * months / wall,
        "peak_mib": peak,
    }


def bench_boltzmann(n: int, steps: int) -> dict:
    model = BoltzmannNoSpace(n)

    def go():
        for _ in range(steps):
            model.step()

    _, wall = _timed(go)
    mesa.Agent._ids.pop(model, None)
    return {"agents": n, "steps": steps, "seconds": wall, "per_second": n * steps / wall}


def bench_numpy(n: int, months: int) -> dict:
    """Arithmetic of the same shape as one month of our per-firm work, in plain numpy.

    Per month: about 40 elementwise passes over (n, 8) item and risk arrays (orders, sales,
    purchases, consumption, risk update) and grouped sums by country: the irreducible work of a
    vectorised firm update, with no model logic around it.
    """
    rng = np.random.default_rng(1)
    country = rng.integers(0, 8, n)
    need = rng.random((n, 8))
    share = rng.random((8, 8))
    price = rng.random(8)
    idx = (country[:, None] * 8 + np.arange(8)).ravel()
    state = {"stock": rng.random((n, 8)), "risk": rng.random((n, 8)) * 0.1}

    def go():
        stock, risk = state["stock"], state["risk"]
        for _ in range(months):
            for _ in range(5):
                r_eff = risk @ share
                target = 2.0 + 6.0 * r_eff
                orders = np.maximum(need + (target * need - stock) / 4.0, 0.0)
                got = orders * price[None, :]
                stock = stock + got - np.minimum(stock, need)
                risk = risk * 0.96 + 0.01 * (1.0 - risk)
                np.bincount(idx, weights=stock.ravel(), minlength=64)

    _, wall = _timed(go)
    return {"firms": n, "months": months, "seconds": wall, "per_second": n * months / wall}


def bench_default() -> dict:
    from experiments.runner import run_scenario

    result, wall = _timed(lambda: run_scenario("default"))
    peak = _peak_mib(lambda: run_scenario("default", months=24))
    sims = result.manifest["wall_seconds"]
    return {
        "wall_seconds_total": wall,
        "simulation_seconds": sims,
        "simulation_seconds_sum": sum(sims.values()),
        "peak_mib_24_months": peak,
    }


def bench_month_latency(n: int = 400, months: int = 60) -> dict:
    scn = load_scenario("default", firms=n, months=months)
    model = RareEarthModel(scn)
    times = []
    for _ in range(months):
        t0 = time.perf_counter()
        model.step()
        times.append(time.perf_counter() - t0)
    mesa.Agent._ids.pop(model, None)
    return {
        "firms": n,
        "median_ms": 1000 * float(np.median(times)),
        "p95_ms": 1000 * float(np.percentile(times, 95)),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1k and 10k only, fewer months")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    sizes = (
        [(1_000, 24), (10_000, 24)] if args.quick else [(1_000, 48), (10_000, 36), (100_000, 12)]
    )
    rows = []
    for n, months in sizes:
        ours = bench_lanthanide(n, months)
        boltz = bench_boltzmann(n, max(2, min(20, 200_000 // n)))
        lower = bench_numpy(n, months)
        rows.append(
            {
                "n": n,
                "lanthanide": ours,
                "boltzmann": boltz,
                "numpy_lower_bound": lower,
                "ratio_vs_boltzmann": ours["per_second"] / boltz["per_second"],
                "ratio_vs_numpy": lower["per_second"] / ours["per_second"],
            }
        )
    default = bench_default()
    latency = bench_month_latency()
    print(
        f"Lanthanide benchmarks on {platform.node()} (Python {platform.python_version()}, "
        f"numpy {np.__version__}, mesa {mesa.__version__})"
    )
    print(
        f"{'agents':>8s} {'ours firm-months/s':>20s} {'Boltzmann agent-steps/s':>24s} "
        f"{'numpy bound/s':>14s} {'ours/Boltz':>10s} {'bound/ours':>10s} {'peak MiB':>9s}"
    )
    for r in rows:
        print(
            f"{r['n']:>8,d} {r['lanthanide']['per_second']:>20,.0f} "
            f"{r['boltzmann']['per_second']:>24,.0f} "
            f"{r['numpy_lower_bound']['per_second']:>14,.0f} "
            f"{r['ratio_vs_boltzmann']:>10.2f} {r['ratio_vs_numpy']:>10.1f} "
            f"{r['lanthanide']['peak_mib']:>9.1f}"
        )
    s = default["simulation_seconds"]
    print(
        f"default scenario + counterfactual (192 months, 400 firms): simulation "
        f"{s['scenario']:.2f} s + {s['counterfactual']:.2f} s = "
        f"{default['simulation_seconds_sum']:.2f} s; whole call "
        f"{default['wall_seconds_total']:.2f} s; peak {default['peak_mib_24_months']:.0f} MiB "
        "(24 months, traced)"
    )
    print(
        f"one month at 400 firms: median {latency['median_ms']:.1f} ms, "
        f"95th percentile {latency['p95_ms']:.1f} ms"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"sizes": rows, "default": default, "month_latency": latency}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
