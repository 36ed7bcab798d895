"""The rare-earth world model: scenario, market, settlement, outcomes."""
