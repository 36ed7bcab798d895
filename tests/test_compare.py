"""Strategy comparison and instrument contrasts on a small scale (real processes, real runs)."""

from __future__ import annotations

import numpy as np

from experiments.cli import main
from experiments.compare import (
    compare_strategies,
    contrast_designs,
    contrast_instruments,
    seeds_from,
    tally,
)


def test_seeds_are_reproducible_and_distinct():
    assert seeds_from(3, 4) == seeds_from(3, 4)
    assert len(set(seeds_from(3, 4))) == 4


def test_compare_strategies_tallies_every_strategy():
    runs = compare_strategies(
        "taiwan-crisis", seeds=2, workers=1, months=30, strategies=("scripted", "rule")
    )
    summary = tally(runs)
    assert list(summary["label"]) == ["scripted", "rule"]
    shares = summary[[c for c in summary if c.startswith("share_")]].sum(axis=1)
    assert np.allclose(shares, 1.0)
    # with scripted states nothing coercive happens in taiwan-crisis: no effect, no concession
    scripted = summary.set_index("label").loc["scripted"]
    assert scripted["share_no_effect"] == 1.0 and scripted["concession_rate"] == 0.0


def test_contrasts_cover_the_three_pairs_and_write_outputs(tmp_path):
    designs = contrast_designs()
    assert len(designs) == 6
    runs = contrast_instruments(seeds=1, workers=2, months=24)
    assert set(runs["label"]) == set(designs)
    assert runs["verdict"].isin(["succeeded", "backfired", "mixed", "no_effect"]).all()
    out = tmp_path / "c"
    assert (
        main(["contrasts", "--seeds", "1", "--months", "12", "--workers", "1", "--out", str(out)])
        == 0
    )
    assert (out / "contrasts.csv").exists() and (out / "verdicts.png").exists()
