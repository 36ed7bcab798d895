"""A scenario and its counterfactual in two processes: the same results as in one, errors kept."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

import experiments.runner as runner
from experiments.runner import pair_workers, run_scenario

fork_only = pytest.mark.skipif(
    pair_workers(2) != 2, reason="the paired run forks (Linux); elsewhere it runs in one process"
)


@fork_only
def test_two_processes_give_the_same_tables_and_summary_as_one():
    one = run_scenario("taiwan-crisis", months=30, firms=300, workers=1)
    two = run_scenario("taiwan-crisis", months=30, firms=300, workers=2)
    assert one.manifest["processes"] == 1 and two.manifest["processes"] == 2
    pd.testing.assert_frame_equal(one.timeseries, two.timeseries, check_exact=True)
    assert list(two.timeseries["run"].cat.categories) == ["scenario", "counterfactual"]
    assert one.summary == two.summary
    assert one.events == two.events
    assert set(two.manifest["wall_seconds"]) == {"scenario", "counterfactual"}


@fork_only
def test_an_error_in_the_counterfactuals_process_is_raised_here(monkeypatch):
    real = runner.simulate

    def failing(scenario, seed, run="scenario"):  # runs in the child: fork copies the patch
        if run == "counterfactual":
            raise ArithmeticError("counterfactual broke in month 3")
        return real(scenario, seed, run)

    monkeypatch.setattr(runner, "simulate", failing)
    with pytest.raises(ArithmeticError, match="counterfactual broke in month 3"):
        run_scenario("default", months=6, workers=2)


@fork_only
def test_a_counterfactual_process_that_dies_is_reported_not_waited_for(monkeypatch):
    import os

    real = runner.simulate

    def dying(scenario, seed, run="scenario"):
        if run == "counterfactual":
            os._exit(7)  # as if killed: no result, no error sent
        return real(scenario, seed, run)

    monkeypatch.setattr(runner, "simulate", dying)
    with pytest.raises(RuntimeError, match="exit code 7"):
        run_scenario("default", months=6, workers=2)


def test_without_a_counterfactual_one_process_runs():
    res = run_scenario("default", months=3, with_counterfactual=False, workers=2)
    assert res.manifest["processes"] == 1
    assert set(res.timeseries["run"].unique()) == {"scenario"}


@pytest.mark.parametrize("bad", [0, 3, "2", 1.5, True])
def test_workers_other_than_1_or_2_is_an_error(bad):
    with pytest.raises(ValueError, match="workers must be 1 or 2"):
        pair_workers(bad)


def test_the_default_runs_one_process_beside_another_thread():
    seen = []
    t = threading.Thread(target=lambda: seen.append(pair_workers(None)))
    stop = threading.Event()
    waiter = threading.Thread(target=stop.wait)  # a second thread alive while we ask
    waiter.start()
    try:
        t.start()
        t.join()
    finally:
        stop.set()
        waiter.join()
    assert seen == [1]
    assert pair_workers(1) == 1


def _ask_in_a_pool_worker(_):
    return pair_workers(None)


def test_the_default_runs_one_process_in_a_pool_worker():
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert list(pool.map(_ask_in_a_pool_worker, [0])) == [1]
