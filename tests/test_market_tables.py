"""The market on hand-computed tables (two or three countries)."""

from __future__ import annotations

import numpy as np
import pytest

from abm.market import Contracts, Rules, clear_item, update_prices

INF = np.inf


def rules(n, quota=None, access=None, leaky=None, tax=None):
    r = Rules.open(n)
    return Rules(
        r.quota_t if quota is None else np.asarray(quota, dtype=float),
        r.access if access is None else np.asarray(access, dtype=float),
        r.leaky if leaky is None else np.asarray(leaky, dtype=bool),
        r.tax if tax is None else np.asarray(tax, dtype=float),
    )


def balances(cl):
    """Tonnage and money identities every clearing must satisfy."""
    assert np.isclose(cl.flows.sum(), cl.sold.sum()) and np.isclose(cl.sold.sum(), cl.bought.sum())
    assert np.isclose(cl.buyer_paid.sum(), cl.seller_got.sum() + cl.tax_got.sum() + cl.freight)


def test_no_restriction_domestic_first_then_exports_by_remaining_stock():
    # countries 0 (exporter A), 1 (exporter B), 2 (importer)
    # supply 100, 50, 0; demand 40, 10, 60; price 10 US$/kg everywhere, no freight
    cl = clear_item([100, 50, 0], [40, 10, 60], [10, 10, 10], rules(3), transport_share=0.0)
    # domestic: A sells 40 at home, B 10; left to export: A 60, B 40
    # the importer asks in proportion to stock left: 60/100 of 60 = 36 from A, 24 from B
    assert np.allclose(np.diag(cl.flows), [40, 10, 0])
    assert np.isclose(cl.flows[0, 2], 36) and np.isclose(cl.flows[1, 2], 24)
    assert np.allclose(cl.unmet, 0) and np.allclose(cl.unsold, [24, 16, 0])
    assert np.isclose(cl.buyer_paid[0, 2], 36 * 1000 * 10)
    balances(cl)


def test_non_binding_quota_changes_nothing():
    base = clear_item([100, 50, 0], [40, 10, 60], [10, 10, 10], rules(3))
    quota = clear_item([100, 50, 0], [40, 10, 60], [10, 10, 10], rules(3, quota=[500, INF, INF]))
    assert np.allclose(base.flows, quota.flows)
    assert not quota.quota_binding.any()


def test_binding_quota_caps_exports_and_leaves_the_importer_short():
    # A may export 20 t; B has nothing left after home demand
    cl = clear_item([100, 10, 0], [40, 10, 60], [10, 10, 10], rules(3, quota=[20, INF, INF]))
    # A: 40 at home, 20 abroad (the quota), 40 unsold; importer gets 20 of 60
    assert np.isclose(cl.flows[0, 2], 20)
    assert cl.quota_binding[0]
    assert np.isclose(cl.unsold[0], 40) and np.isclose(cl.unmet[2], 40)
    balances(cl)


@pytest.mark.parametrize("leak", [0.0, 0.25])
def test_embargo_with_and_without_leakage(leak):
    # A embargoes country 2; B is open; supply after home demand: A 60, B 20; importers 1 and 2
    access = np.ones((3, 3))
    access[0, 2] = leak
    leaky = np.zeros((3, 3), dtype=bool)
    leaky[0, 2] = True
    r = rules(3, access=access, leaky=leaky)
    cl = clear_item(
        [100, 30, 0], [40, 10, 40], [10, 10, 10], r, leakage_premium=0.5, transport_share=0.0
    )
    # without the embargo, 2 would ask A for 60/80 of 40 = 30 t; the embargo lets through
    # leak * 30; B (20 t to spare) serves 2 as far as it can
    assert np.isclose(cl.flows[0, 2], leak * 30)
    assert np.isclose(cl.leaked[0, 2], leak * 30)
    assert np.isclose(cl.flows[1, 2], 20)
    assert np.isclose(cl.unmet[2], 40 - 20 - leak * 30)
    # leaked tonnes pay the premium: 1.5 x the local price
    assert np.isclose(cl.buyer_paid[0, 2], leak * 30 * 1000 * 10 * 1.5)
    balances(cl)


def test_licensing_approval_rate_caps_the_flow():
    access = np.ones((2, 2))
    access[0, 1] = 0.4
    cl = clear_item([100, 0], [0, 50], [10, 10], rules(2, access=access))
    # alone, the importer would get 50 from A; 40% is licensed
    assert np.isclose(cl.flows[0, 1], 20)
    assert np.isclose(cl.unmet[1], 30)


def test_export_tax_and_freight_split_the_payment():
    cl = clear_item([10, 0], [0, 10], [5, 5], rules(2, tax=[0.25, 0.0]), transport_share=0.1)
    paid = 10 * 1000 * 5  # 50,000 US$
    freight = 0.1 * paid  # 5,000
    tax = (paid - freight) * 0.25 / 1.25  # 9,000
    assert np.isclose(cl.freight, freight)
    assert np.isclose(cl.tax_got[0], tax)
    assert np.isclose(cl.seller_got[0, 1], paid - freight - tax)  # 36,000
    balances(cl)


def test_offtake_contract_is_served_first_at_its_price():
    # A sells 30 t; contract: 20 t to country 2 at 50 US$/kg; country 1 also wants 30 t
    con = Contracts(np.array([0]), np.array([2]), np.array([20.0]), np.array([50.0]))
    cl = clear_item([30, 0, 0], [0, 30, 30], [10, 10, 10], rules(3), con, transport_share=0.0)
    assert np.isclose(cl.contract_t[0], 20)
    # 10 t left for both importers, asked in proportion to their remaining demand (30 : 10)
    assert np.isclose(cl.flows[0, 2], 20 + 2.5) and np.isclose(cl.flows[0, 1], 7.5)
    assert np.isclose(cl.contract_seller_got[0], 20 * 1000 * 50)
    balances(cl)


def test_contract_to_an_embargoed_buyer_is_not_served():
    access = np.ones((2, 2))
    access[0, 1] = 0.1
    leaky = np.zeros((2, 2), dtype=bool)
    leaky[0, 1] = True
    con = Contracts(np.array([0]), np.array([1]), np.array([5.0]), np.array([20.0]))
    cl = clear_item([10, 0], [0, 10], [10, 10], rules(2, access=access, leaky=leaky), con)
    assert cl.contract_t[0] == 0


def test_prices_rise_with_unmet_demand_fall_with_excess_stock_and_split_when_cut():
    # importer short, exporter with unsold stock above its working reserve, route cut
    access = np.ones((2, 2))
    access[0, 1] = 0.0
    r = rules(2, access=access, leaky=np.array([[False, True], [False, False]]))
    supply, demand = np.array([100.0, 0.0]), np.array([20.0, 50.0])
    cl = clear_item(supply, demand, [10, 10], r)
    new = update_prices(
        np.array([10.0, 10.0]),
        cl,
        supply,
        demand,
        r,
        adjust_speed=0.5,
        arbitrage_strength=0.9,
        max_log_change=0.25,
        reserve=np.zeros(2),
    )
    # exporter: z = -80/120; importer: z = +50/50 -> capped at +0.25
    assert np.isclose(new[0], 10 * np.exp(-0.125))  # fall capped at half the rise cap
    assert np.isclose(new[1], 10 * np.exp(0.25))
    # open the route: the importer is served and the two prices are pulled together
    cl2 = clear_item(supply, demand, [10, 10], rules(2))
    new2 = update_prices(
        np.array([10.0, 12.0]),
        cl2,
        supply,
        demand,
        rules(2),
        adjust_speed=0.5,
        arbitrage_strength=0.9,
        max_log_change=0.25,
    )
    assert abs(np.log(new2[1] / new2[0])) < abs(np.log(12 / 10))
