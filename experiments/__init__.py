"""Experiments: run scenarios against their counterfactuals, write tidy outputs."""

from experiments.runner import Result, run_scenario

__all__ = ["Result", "run_scenario"]
