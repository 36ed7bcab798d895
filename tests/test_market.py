"""The market as a pure function, on small tables computed by hand (two or three countries).

Every case writes its expected numbers out with the arithmetic in a comment, and every clearing
is checked against the tonnage and money identities (:func:`identities`).
"""

from __future__ import annotations

import numpy as np
import pytest

from abm.market import (
    KG_PER_T,
    Contracts,
    Rules,
    arbitrage,
    clear_item,
    excess_demand,
    update_prices,
)

INF = np.inf


def rules(n, quota=None, access=None, leaky=None, tax=None) -> Rules:
    """Open rules for ``n`` countries with the given parts replaced."""
    r = Rules.open(n)
    return Rules(
        r.quota_t if quota is None else np.asarray(quota, dtype=float),
        r.access if access is None else np.asarray(access, dtype=float),
        r.leaky if leaky is None else np.asarray(leaky, dtype=bool),
        r.tax if tax is None else np.asarray(tax, dtype=float),
    )


def embargo(n, exporter, target, leak) -> Rules:
    """An embargo by ``exporter`` on ``target`` letting through ``leak`` of the normal flow."""
    access = np.ones((n, n))
    access[exporter, target] = leak
    leaky = np.zeros((n, n), dtype=bool)
    leaky[exporter, target] = True
    return rules(n, access=access, leaky=leaky)


def identities(cl, supply, demand, transport_share, tax):
    """Tonnage and money identities every clearing satisfies."""
    supply, demand, tax = (np.asarray(a, dtype=float) for a in (supply, demand, tax))
    assert (cl.flows >= -1e-12).all()
    # every tonne moved was sold by someone and bought by someone
    assert cl.flows.sum() == pytest.approx(cl.sold.sum())
    assert cl.sold.sum() == pytest.approx(cl.bought.sum())
    assert np.allclose(cl.sold, cl.flows.sum(axis=1))
    assert np.allclose(cl.bought, cl.flows.sum(axis=0))
    # what was not sold is still there; what was not bought is unmet
    assert np.allclose(cl.sold + cl.unsold, supply)
    assert np.allclose(cl.bought + cl.unmet, demand)
    assert (cl.leaked <= cl.flows + 1e-12).all()
    # money: buyers' payments = sellers' receipts + export tax + freight
    assert cl.buyer_paid.sum() == pytest.approx(
        cl.seller_got.sum() + cl.tax_got.sum() + cl.freight, rel=1e-12
    )
    # pair by pair: freight on international payments, tax = taxable x tau / (1 + tau)
    intl = cl.buyer_paid * ~np.eye(len(supply), dtype=bool)
    taxable = intl * (1 - transport_share)
    assert np.allclose(cl.tax_got, (taxable * (tax / (1 + tax))[:, None]).sum(axis=1))
    assert cl.freight == pytest.approx(intl.sum() * transport_share)


def clear(supply, demand, price, r, contracts=None, **kw):
    """clear_item, then the identities check."""
    cl = clear_item(supply, demand, price, r, contracts, **kw)
    identities(cl, supply, demand, kw.get("transport_share", 0.03), r.tax)
    return cl


# ----------------------------------------------------------------------------- clearing


def test_no_restriction_serves_home_demand_first_then_exports_by_remaining_stock():
    # countries: 0 exporter A, 1 exporter B, 2 importer; 10 US$/kg everywhere; freight 3%
    cl = clear([100, 50, 0], [40, 10, 60], [10, 10, 10], rules(3))
    # home first: A sells 40 at home, B 10; left to export: A 60, B 40 (100 in all)
    assert np.allclose(np.diag(cl.flows), [40, 10, 0])
    # the importer asks in proportion to stock left: 60 x 60/100 = 36 from A, 60 x 40/100 = 24
    assert cl.flows[0, 2] == pytest.approx(36)
    assert cl.flows[1, 2] == pytest.approx(24)
    assert cl.flows[0, 1] == 0 and cl.flows[1, 0] == 0
    assert np.allclose(cl.sold, [76, 34, 0]) and np.allclose(cl.bought, [40, 10, 60])
    assert np.allclose(cl.unmet, 0) and np.allclose(cl.unsold, [24, 16, 0])
    # payments: 36 t x 1000 kg x 10 US$ = 360,000 paid by the importer to A; freight takes 3%
    assert cl.buyer_paid[0, 2] == pytest.approx(360_000)
    assert cl.seller_got[0, 2] == pytest.approx(360_000 * 0.97)  # 349,200
    assert cl.freight == pytest.approx(0.03 * (360_000 + 240_000))  # 18,000
    # home sales pay no freight: 40 t x 1000 x 10 = 400,000 straight to A's sellers
    assert cl.buyer_paid[0, 0] == pytest.approx(400_000)
    assert cl.seller_got[0, 0] == pytest.approx(400_000)
    assert np.allclose(cl.tax_got, 0)
    assert not cl.quota_binding.any() and np.allclose(cl.leaked, 0)
    # A and B could still have exported their unsold stock
    assert np.allclose(cl.spare_exports, [24, 16, 0])


def test_world_shortage_is_shared_by_all_buyers_without_home_bias():
    # exporter A: 100 t, wants 80 at home; importer B wants 45; the world is short: 100/125 = 0.8
    home = clear([100, 0], [80, 45], [10, 10], rules(2))
    assert np.allclose(home.bought, [80, 20])  # home first (home_bias 1): B bears the shortage
    shared = clear([100, 0], [80, 45], [10, 10], rules(2), home_bias=0.0)
    # A serves 0.8 x 80 = 64 at home first, exports the 36 left to B: both get 80% of orders
    assert np.allclose(shared.bought, [64, 36])
    assert np.allclose(shared.bought / np.array([80, 45]), 0.8)
    half = clear([100, 0], [80, 45], [10, 10], rules(2), home_bias=0.5)
    # half way: 80 x (0.5 + 0.5 x 0.8) = 72 at home, 28 exported
    assert np.allclose(half.bought, [72, 28])


def test_without_home_bias_what_a_cut_route_cannot_take_is_sold_at_home():
    # as above, but A embargoes B with no leakage: A's 64 first, nothing exported, then 16 more
    # at home (step 4): nothing is withheld, and B gets nothing
    cl = clear([100, 0], [80, 45], [10, 10], embargo(2, 0, 1, 0.0), home_bias=0.0)
    assert np.allclose(cl.bought, [80, 0]) and np.allclose(cl.unsold, [20, 0])
    assert cl.buyer_paid[0, 0] == pytest.approx(80 * 1000 * 10)


def _same_clearing(a, b):
    for field in ("flows", "buyer_paid", "seller_got", "unmet", "unsold", "quota_binding"):
        assert np.allclose(getattr(a, field), getattr(b, field)), field
    assert a.freight == pytest.approx(b.freight)


def test_quota_above_the_exporters_stock_gives_the_same_result_as_none():
    open_ = clear([100, 50, 0], [40, 10, 60], [10, 10, 10], rules(3))
    # A has 60 t left after home demand; a 500 t quota cannot bind
    quota = clear([100, 50, 0], [40, 10, 60], [10, 10, 10], rules(3, quota=[500, INF, INF]))
    _same_clearing(open_, quota)
    assert np.allclose(open_.spare_exports, quota.spare_exports)
    assert not quota.quota_binding.any()


def test_non_binding_export_quota_gives_the_same_result_as_none():
    open_ = clear([100, 50, 0], [40, 10, 60], [10, 10, 10], rules(3))
    # unrestricted, A exports 36 t of its 60 t left; a 50 t quota does not bind
    quota = clear([100, 50, 0], [40, 10, 60], [10, 10, 10], rules(3, quota=[50, INF, INF]))
    assert not quota.quota_binding.any()
    # expected 36 t from A and 24 t from B as without the quota (the model gives 33.3 and 26.7:
    # the importer asks A for 60 x 50/90 instead of 60 x 60/100)
    _same_clearing(open_, quota)


def test_binding_export_quota_caps_exports_and_leaves_the_importer_short():
    # A (100 t) may export 20 t; B (20 t) has 10 t after its home demand; importer wants 60 t
    cl = clear([100, 20, 0], [40, 10, 60], [10, 10, 10], rules(3, quota=[20, INF, INF]))
    # exportable: A min(60, 20) = 20, B 10. Round 1: the importer asks A 60 x 20/30 = 40 and
    # B 60 x 10/30 = 20; both are over-asked 2x and ship what they can: A 20, B 10
    assert cl.flows[0, 2] == pytest.approx(20)  # exports equal the quota
    assert cl.flows[1, 2] == pytest.approx(10)
    assert cl.quota_binding.tolist() == [True, False, False]
    # A keeps 100 - 40 - 20 = 40 t unsold; the importer is 60 - 30 = 30 t short
    assert cl.unsold[0] == pytest.approx(40)
    assert cl.unmet[2] == pytest.approx(30)
    assert cl.spare_exports[0] == pytest.approx(0)


def test_embargo_without_leakage_stops_the_flow_to_the_target_only():
    # 0 exporter, 1 target (wants 40 t), 2 another importer (wants 20 t)
    supply, demand, price = [100, 0, 0], [0, 40, 20], [10, 12, 10]
    open_ = clear(supply, demand, price, rules(3))
    assert open_.flows[0, 1] == pytest.approx(40) and open_.flows[0, 2] == pytest.approx(20)
    cl = clear(supply, demand, price, embargo(3, 0, 1, 0.0))
    assert cl.flows[0, 1] == 0
    assert cl.unmet[1] == pytest.approx(40)
    assert cl.leaked.sum() == 0
    # the other importer gets exactly what it got without the embargo
    assert cl.flows[0, 2] == pytest.approx(open_.flows[0, 2])
    assert cl.buyer_paid[0, 2] == pytest.approx(open_.buyer_paid[0, 2])


def test_embargo_with_leakage_lets_a_quarter_through_at_a_premium():
    supply, demand, price = [100, 0, 0], [0, 40, 20], [10, 12, 10]
    cl = clear(supply, demand, price, embargo(3, 0, 1, 0.25), leakage_premium=0.3)
    # without the embargo the target would get 40 t; 25% leaks: 10 t
    assert cl.flows[0, 1] == pytest.approx(0.25 * 40)
    assert cl.leaked[0, 1] == pytest.approx(10)
    assert cl.leaked[0, 2] == 0  # the open route is not leakage
    assert cl.flows[0, 2] == pytest.approx(20)
    assert cl.unmet[1] == pytest.approx(30)
    # the target pays its own price (12 US$/kg) plus the 30% premium: 10 x 1000 x 12 x 1.3
    assert cl.buyer_paid[0, 1] == pytest.approx(156_000)
    assert cl.seller_got[0, 1] == pytest.approx(156_000 * 0.97)  # freight 3%, no tax
    # the open route pays no premium: 20 x 1000 x 10
    assert cl.buyer_paid[0, 2] == pytest.approx(200_000)


@pytest.mark.parametrize("leak", [0.0, 0.25])
def test_embargo_shifts_the_target_to_another_supplier(leak):
    # A (0) embargoes 2; B (1) is open. After home demand: A has 60 t, B 20 t; 2 wants 40 t
    cl = clear([100, 30, 0], [40, 10, 40], [10, 10, 10], embargo(3, 0, 2, leak))
    # unrestricted, 2 would ask A for 40 x 60/80 = 30 t; the embargo lets leak x 30 through
    assert cl.flows[0, 2] == pytest.approx(leak * 30)
    assert cl.leaked[0, 2] == pytest.approx(leak * 30)
    # B ships all it has to spare (20 t) to the target
    assert cl.flows[1, 2] == pytest.approx(20)
    assert cl.unmet[2] == pytest.approx(40 - 20 - leak * 30)
    # leaked tonnes pay 1.3 x the local price: 7.5 x 1000 x 10 x 1.3 = 97,500 with leak 0.25
    assert cl.buyer_paid[0, 2] == pytest.approx(leak * 30 * KG_PER_T * 10 * 1.3)


def test_licensing_lets_through_the_approval_rate_of_the_normal_flow():
    # exporter 0 licenses all exports at a 30% approval rate; importers want 50 and 30 t
    access = np.ones((3, 3))
    access[0, 1] = access[0, 2] = 0.3
    cl = clear([100, 0, 0], [0, 50, 30], [10, 10, 10], rules(3, access=access))
    # normal flows 50 and 30 t; 30% approved: 15 and 9 t
    assert cl.flows[0, 1] == pytest.approx(15)
    assert cl.flows[0, 2] == pytest.approx(9)
    assert np.allclose(cl.unmet, [0, 35, 21])
    # licensed tonnes are not leakage and pay no premium: 15 x 1000 x 10
    assert cl.leaked.sum() == 0
    assert cl.buyer_paid[0, 1] == pytest.approx(150_000)
    assert cl.unsold[0] == pytest.approx(76)


def test_export_tax_and_freight_split_the_payment():
    # A sells 2 t at home (5 US$/kg) and exports 4 t to B (8 US$/kg) and 6 t to C (6 US$/kg);
    # export tax 25%, freight 5%
    r = rules(3, tax=[0.25, 0.0, 0.0])
    cl = clear([12, 0, 0], [2, 4, 6], [5, 8, 6], r, transport_share=0.05)
    assert np.allclose(cl.flows[0], [2, 4, 6])
    paid = 4 * 1000 * 8 + 6 * 1000 * 6  # 32,000 + 36,000 = 68,000 US$ from abroad
    freight = 0.05 * paid  # 3,400
    tax = (paid - freight) * 0.25 / 1.25  # taxable 64,600 x 0.2 = 12,920
    assert cl.freight == pytest.approx(freight)
    assert cl.tax_got[0] == pytest.approx(tax)
    assert np.allclose(cl.tax_got[1:], 0)
    assert cl.seller_got[0, 1] == pytest.approx(32_000 * 0.95 / 1.25)  # 24,320
    assert cl.seller_got[0, 2] == pytest.approx(36_000 * 0.95 / 1.25)  # 27,360
    assert cl.seller_got[0, 1:].sum() == pytest.approx(paid - freight - tax)  # 51,680
    # the home sale pays neither tax nor freight: 2 x 1000 x 5
    assert cl.seller_got[0, 0] == pytest.approx(10_000)


def test_offtake_contract_is_served_first_at_the_contract_price():
    # contract: A (0) delivers 20 t to C (2) at 50 US$/kg; market price 10; B and C want 30 t
    con = Contracts(np.array([0]), np.array([2]), np.array([20.0]), np.array([50.0]))
    r = rules(3, tax=[0.1, 0.0, 0.0])
    cl = clear([30, 0, 0], [0, 30, 30], [10, 10, 10], r, con, transport_share=0.03)
    assert cl.contract_t[0] == pytest.approx(20)
    # A has 10 t left for the market; B asks 30 t and C 10 t: 40 asked, scaled to 10:
    # B 7.5 t, C 2.5 t (on top of its 20 contract tonnes)
    assert cl.flows[0, 1] == pytest.approx(7.5)
    assert cl.flows[0, 2] == pytest.approx(22.5)
    # C pays 20 x 1000 x 50 = 1,000,000 under contract plus 2.5 x 1000 x 10 = 25,000
    assert cl.buyer_paid[0, 2] == pytest.approx(1_025_000)
    # the contract seller gets the contract payment less 3% freight and the 10% tax:
    # 1,000,000 x 0.97 / 1.1 = 881,818.18
    assert cl.contract_seller_got[0] == pytest.approx(1_000_000 * 0.97 / 1.1)
    # all A's payments: 1,100,000 - 33,000 freight - 97,000 tax = 970,000
    assert cl.freight == pytest.approx(33_000)
    assert cl.tax_got[0] == pytest.approx(97_000)
    assert cl.seller_got[0].sum() == pytest.approx(970_000)


def test_offtake_contract_comes_before_home_demand_and_within_the_quota():
    # A has 30 t and wants 30 t at home; a 20 t contract to C is served first
    con = Contracts(np.array([0]), np.array([2]), np.array([20.0]), np.array([50.0]))
    cl = clear([30, 0, 0], [30, 0, 30], [10, 10, 10], rules(3), con)
    assert cl.contract_t[0] == pytest.approx(20)
    assert cl.flows[0, 0] == pytest.approx(10)  # home gets what the contract left
    assert np.allclose(cl.unmet, [20, 0, 10])
    # an export quota of 5 t caps the contract too
    capped = clear([30, 0, 0], [30, 0, 30], [10, 10, 10], rules(3, quota=[5, INF, INF]), con)
    assert capped.contract_t[0] == pytest.approx(5)
    assert capped.flows[0, 2] == pytest.approx(5)
    assert capped.flows[0, 0] == pytest.approx(25)


def test_contract_to_an_embargoed_buyer_is_not_served():
    con = Contracts(np.array([0]), np.array([1]), np.array([5.0]), np.array([20.0]))
    cl = clear([10, 0], [0, 10], [10, 10], embargo(2, 0, 1, 0.1), con)
    assert cl.contract_t[0] == 0
    assert cl.contract_seller_got[0] == 0
    # only leakage reaches the buyer: 10% of the normal 10 t
    assert cl.flows[0, 1] == pytest.approx(1.0)


def test_clear_item_does_not_mutate_its_inputs():
    supply, demand, price = np.array([100.0, 0]), np.array([0.0, 50]), np.array([10.0, 10])
    r = rules(2, quota=[20, INF])
    copies = [a.copy() for a in (supply, demand, price, r.quota_t, r.access)]
    clear_item(supply, demand, price, r)
    for before, after in zip(copies, (supply, demand, price, r.quota_t, r.access), strict=True):
        assert np.array_equal(before, after)


# ----------------------------------------------------------------------------- prices


def test_excess_demand_counts_unmet_demand_and_stock_above_the_reserve():
    supply, demand = np.array([100.0, 50, 0]), np.array([40.0, 10, 60])
    cl = clear(supply, demand, [10, 10, 10], rules(3))
    # unsold 24, 16, 0; unmet 0: z = -24/140, -16/60, 0
    z = excess_demand(cl, supply, demand)
    assert z == pytest.approx([-24 / 140, -16 / 60, 0.0])
    # A wants to keep 30 t: its 24 t unsold is no excess; B keeps 10 t: 6 t excess
    z = excess_demand(cl, supply, demand, reserve=np.array([30.0, 10.0, 0.0]))
    assert z == pytest.approx([0.0, -6 / 60, 0.0])
    # a short importer: 40 t unmet of 40 wanted -> z = 40/40
    cut = clear([100, 0], [20, 40], [10, 10], embargo(2, 0, 1, 0.0))
    z = excess_demand(cut, np.array([100.0, 0]), np.array([20.0, 40]))
    assert z[1] == pytest.approx(1.0) and z[0] == pytest.approx(-80 / 120)


@pytest.mark.parametrize(
    "speed, cap, expected",
    [
        # z = -2/3 for the exporter and +1 for the cut-off importer
        (0.3, 1.0, [-0.2, 0.3]),  # 0.3 x z, inside the caps
        (0.3, 0.25, [-0.125, 0.25]),  # rise capped at 0.25, fall at half that
        (0.0, 0.25, [0.0, 0.0]),
    ],
)
def test_update_prices_moves_log_prices_by_speed_times_excess_demand(speed, cap, expected):
    supply, demand = np.array([100.0, 0.0]), np.array([20.0, 40.0])
    r = embargo(2, 0, 1, 0.0)  # the route is cut, so arbitrage cannot link the two prices
    cl = clear(supply, demand, [10, 10], r)
    for strength in (0.0, 0.9):
        new = update_prices(
            np.array([10.0, 10.0]),
            cl,
            supply,
            demand,
            r,
            adjust_speed=speed,
            arbitrage_strength=strength,
            max_log_change=cap,
        )
        assert new == pytest.approx(10 * np.exp(expected))


def test_update_prices_never_goes_below_the_floor():
    supply, demand = np.array([100.0, 0.0]), np.array([0.0, 0.0])
    cl = clear(supply, demand, [0.001, 0.001], rules(2))
    new = update_prices(
        np.array([0.001, 0.001]),
        cl,
        supply,
        demand,
        rules(2),
        adjust_speed=1.0,
        arbitrage_strength=0.5,
        max_log_change=1.0,
        floor=0.001,
    )
    # A's price would fall by half a log point (z = -1) and pull B's down with it: both floor
    assert new == pytest.approx([0.001, 0.001])


def _linked_pair(r):
    """Exporter 0 (100 t, 20 at home) ships 50 t to importer 1: one open route 0 -> 1."""
    supply, demand = np.array([100.0, 0.0]), np.array([20.0, 50.0])
    return clear(supply, demand, [10, 20], r), supply


def test_arbitrage_with_full_strength_meets_at_the_geometric_mean():
    r = rules(2)
    cl, supply = _linked_pair(r)
    logp = arbitrage(np.log([10.0, 20.0]), cl, supply, r, 1.0)
    # one link: each price moves to the mean of the two logs: sqrt(10 x 20) = 14.142
    assert np.exp(logp) == pytest.approx([np.sqrt(200), np.sqrt(200)])


def test_arbitrage_closes_a_share_of_the_gap_per_pass():
    r = rules(2)
    cl, supply = _linked_pair(r)
    logp = arbitrage(np.log([10.0, 20.0]), cl, supply, r, 0.5)
    # each of the three passes halves the log gap (ln 2 -> ln 2 / 8) and keeps the sum (ln 200)
    assert np.exp(logp) == pytest.approx(
        [np.sqrt(200) * 2 ** (-1 / 16), np.sqrt(200) * 2 ** (1 / 16)]
    )


def test_arbitrage_keeps_the_export_tax_wedge():
    r = rules(2, tax=[0.1, 0.0])
    cl, supply = _linked_pair(r)
    logp = arbitrage(np.log([10.0, 20.0]), cl, supply, r, 1.0)
    p = np.exp(logp)
    # the importer's price settles 10% above the exporter's; the product stays 200
    assert p[1] / p[0] == pytest.approx(1.1)
    assert p[0] * p[1] == pytest.approx(200)


@pytest.mark.parametrize(
    "r",
    [
        embargo(2, 0, 1, 0.25),  # embargoed (leaky) route
        rules(2, access=[[1.0, 0.5], [1.0, 1.0]]),  # licensed route
        rules(2, quota=[10, INF]),  # binding export quota
    ],
    ids=["embargo", "licensing", "binding-quota"],
)
def test_arbitrage_does_not_link_across_a_restricted_route(r):
    cl, supply = _linked_pair(r)
    assert cl.flows[0, 1] > 0  # goods still move, but the two markets are separate
    logp = np.log([10.0, 20.0])
    assert arbitrage(logp, cl, supply, r, 1.0) == pytest.approx(logp)


def test_arbitrage_needs_trade_or_spare_goods():
    # neither country has goods to spare and nothing moves across: no link
    supply, demand = np.array([20.0, 0.0]), np.array([20.0, 0.0])
    cl = clear(supply, demand, [10, 20], rules(2))
    logp = np.log([10.0, 20.0])
    assert arbitrage(logp, cl, supply, rules(2), 1.0) == pytest.approx(logp)


def test_clear_items_with_kept_read_only_rules_matches_fresh_rules():
    # masks derived from read-only rule arrays are kept between calls (abm.market._kept); the
    # clearings must be those of writable copies, and new rule arrays must not hit the kept ones
    from abm.market import clear_items

    rng = np.random.default_rng(3)
    k, n = 4, 5
    access_open = np.ones((k, n, n))
    access_cut = access_open.copy()
    access_cut[:, 0, 1] = 0.2
    leaky = np.zeros((k, n, n), dtype=bool)
    leaky[:, 0, 1] = True
    tax = np.zeros((k, n))
    tax[:, 0] = 0.1
    frozen = []
    for a in (access_open, access_cut, leaky, tax):
        b = a.copy()
        b.flags.writeable = False
        frozen.append(b)
    f_open, f_cut, f_leaky, f_tax = frozen
    for trial in range(6):
        supply = rng.uniform(0, 100, (k, n))
        demand = rng.uniform(0, 150, (k, n))
        price = rng.uniform(5, 50, (k, n))
        quota = np.full((k, n), np.inf) if trial % 3 else rng.uniform(0, 30, (k, n))
        contracts = [Contracts.empty() for _ in range(k)]
        cut = trial % 2 == 1
        fresh = (access_cut if cut else access_open, leaky, tax)
        kept = (f_cut if cut else f_open, f_leaky, f_tax)
        a, b = (
            clear_items(supply, demand, price, quota, *r, contracts, home_bias=0.5)
            for r in (fresh, kept)
        )
        for key in a.stacked:
            assert np.array_equal(a.stacked[key], b.stacked[key]), key
