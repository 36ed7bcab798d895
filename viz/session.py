"""One browser session's world: a scenario model and its counterfactual, stepped in lockstep.

The explorer builds one :class:`RunPair` per page (never at module level: Solara runs a module
once per server, so a module-level model would be shared by every browser). It steps the two
models month by month and reads what they recorded, month by month, from each model's
:class:`~abm.recorder.Recorder`, so a month costs the same at month 1 and month 190. The outputs
(``timeseries.parquet``, ``summary.json``, events) are those of ``lanthanide run``: they come from
:mod:`experiments.runner`, not from code here.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import mesa
import pandas as pd

from abm.model import RareEarthModel
from abm.recorder import Recorder
from abm.scenario import Scenario, counterfactual

RUNS = ("scenario", "counterfactual")


@dataclass
class Month:
    """What one step produced: the month's rows of both runs, its date and the step's time."""

    date: str
    rows: pd.DataFrame
    seconds: float


class RunPair:
    """A scenario and its counterfactual (same seed), stepped together.

    Args:
        scenario: the validated scenario.
        seed: the random seed of both runs (default: the scenario's); seed 0 is a seed.
    """

    def __init__(self, scenario: Scenario, seed: int | None = None):
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else int(seed)
        self.models = {
            "scenario": RareEarthModel(scenario, seed=self.seed, run="scenario"),
            "counterfactual": RareEarthModel(
                counterfactual(scenario), seed=self.seed, run="counterfactual"
            ),
        }
        self.months: list[pd.DataFrame] = []  # one frame per month, both runs
        self.dates: list[str] = []
        self.wall = {run: 0.0 for run in RUNS}
        self._table: tuple[int, pd.DataFrame] | None = None  # (months covered, table)

    # -------------------------------------------------------------- stepping

    @property
    def month(self) -> int:
        """Months simulated so far."""
        return len(self.dates)

    @property
    def horizon(self) -> int:
        """The scenario's horizon in months."""
        return self.scenario.months

    @property
    def done(self) -> bool:
        """True once the horizon is reached."""
        return self.month >= self.horizon

    def date_of(self, month: int) -> str:
        """'YYYY-MM' of a month index."""
        return self.models["scenario"].date_of(month)

    @property
    def next_date(self) -> str:
        """The month the next step will simulate ('YYYY-MM')."""
        return self.date_of(self.month)

    def step(self) -> Month | None:
        """Advance both runs one month; return that month's recorded rows (None at the horizon)."""
        if self.done:
            return None
        t0 = time.perf_counter()
        frames = []
        for run, model in self.models.items():
            t = time.perf_counter()
            model.step()
            self.wall[run] += time.perf_counter() - t
            frames.append(self._drain(model))
        rows = pd.concat(frames, ignore_index=True)
        rows["run"] = pd.Categorical(rows["run"].astype(str), categories=list(RUNS))
        date = self.models["scenario"].dates[-1]
        self.months.append(rows)
        self.dates.append(date)
        return Month(date, rows, time.perf_counter() - t0)

    @staticmethod
    def _drain(model: RareEarthModel) -> pd.DataFrame:
        """The rows the model recorded since the last call (a fresh recorder takes over)."""
        rec = model.recorder
        model.recorder = Recorder(rec.run, rec.seed)
        return rec.frame(model.dates)

    # -------------------------------------------------------------- reading

    @property
    def timeseries(self) -> pd.DataFrame:
        """The long table so far, both runs (months in order, the two runs interleaved).

        Built incrementally: only the months added since the last call are concatenated.
        """
        months = list(self.months)  # a snapshot: another thread may be stepping
        if not months:
            return pd.DataFrame()
        n, df = self._table if self._table is not None else (0, None)
        if n != len(months):
            parts = ([df] if df is not None else []) + months[n:]
            df = pd.concat(parts, ignore_index=True)
            df["run"] = pd.Categorical(df["run"].astype(str), categories=list(RUNS))
            self._table = (len(months), df)
        return self._table[1]

    def run_frame(self, run: str) -> pd.DataFrame:
        """The rows of one run (``scenario`` or ``counterfactual``)."""
        ts = self.timeseries
        return ts.loc[ts["run"] == run] if not ts.empty else ts

    def events(self) -> list[tuple[str, str, str]]:
        """Measures started, lifted or ended so far in the run: (date, origin, text)."""
        m = self.models["scenario"]
        return [(m.date_of(k), who, text) for k, who, text in m.policy.log]

    def counterfactual_events(self) -> list[tuple[str, str, str]]:
        """The same for the counterfactual."""
        m = self.models["counterfactual"]
        return [(m.date_of(k), who, text) for k, who, text in m.policy.log]

    def summary(self) -> dict:
        """``summary.json`` of the months so far (the verdict as it stands)."""
        from experiments.runner import summarise

        scn = self.scenario
        run_df, cf_df = self.run_frame("scenario"), self.run_frame("counterfactual")
        out = summarise(scn, run_df, cf_df)
        out["months"] = self.month
        out["seed"] = self.seed
        return out

    def manifest(self) -> dict:
        """``manifest.json`` for an export (what was run, and how far)."""
        from experiments.runner import _git_commit, _versions

        return {
            "scenario": self.scenario.to_dict(),
            "scenario_name": self.scenario.name,
            "seed": self.seed,
            "months": self.month,
            "horizon": self.horizon,
            "start": self.scenario.start,
            "firm_agents": self.models["scenario"].firms.n,
            "counterfactual": True,
            "wall_seconds": {k: round(v, 4) for k, v in self.wall.items()},
            "versions": _versions(),
            "git_commit": _git_commit(),
            "source": "lanthanide explore",
        }

    # -------------------------------------------------------------- export

    def parquet_bytes(self) -> bytes:
        """``timeseries.parquet`` of the months so far."""
        import io

        buf = io.BytesIO()
        # the same row order as lanthanide run: the scenario's months, then the counterfactual's
        ts = self.timeseries.sort_values(["run", "date"], kind="stable", ignore_index=True)
        ts.to_parquet(buf, index=False)
        return buf.getvalue()

    def summary_bytes(self) -> bytes:
        """``summary.json`` of the months so far."""
        return (json.dumps(self.summary(), indent=2, default=str) + "\n").encode()

    def headline_png(self) -> bytes:
        """``headline.png``, the CLI's four-panel chart, of the months so far."""
        import tempfile
        from pathlib import Path

        from experiments.charts import headline_chart

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "headline.png"
            headline_chart(self.timeseries, self.summary(), path)
            return path.read_bytes()

    def close(self) -> None:
        """Release both models (Mesa keeps every model alive through ``Agent._ids``)."""
        for model in self.models.values():
            mesa.Agent._ids.pop(model, None)
