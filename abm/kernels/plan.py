"""Kernels for step plan of a month: producers' output and projects (see abm.kernels).

``RareEarthModel._plan_production`` on the numba engine runs two fused passes over the
producers (rows ``0 .. P-1`` of the firm arrays) with the numpy and Python steps that must stay
there between them: the mining quotas by country (sums numpy orders), the recyclers' capacity by
country (a matrix product) and the start of new projects (the finance pool's first come, first
served). Every element takes the float64 operations of the numpy code, in its order.
"""

from __future__ import annotations

import math

import numpy as np

from abm.engine import jit
from abm.kernels.common import pairwise_sum


@jit
def _max(a, b):
    """``np.maximum`` of two floats (a NaN in either is the result)."""
    return a if (a >= b or a != a) else b


@jit
def _min(a, b):
    """``np.minimum`` of two floats (a NaN in either is the result)."""
    return a if (a <= b or a != a) else b


@jit
def _row_sum(x, r):
    """``x.sum(axis=1)[r]`` for a C-ordered (n, k) array, in numpy's order.

    numpy sums each row of up to 128 columns pairwise: sequentially below 8 columns, else in
    8 running sums combined as a tree, the columns past the last multiple of 8 added after.
    """
    k = x.shape[1]
    if k < 8:
        s = 0.0
        for j in range(k):
            s += x[r, j]
        return s
    acc = np.empty(8)
    for j in range(8):
        acc[j] = x[r, j]
    j = 8
    while j < k - (k % 8):
        for q in range(8):
            acc[q] += x[r, j + q]
        j += 8
    s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
    while j < k:
        s += x[r, j]
        j += 1
    return s


@jit
def _cap_to_quota(mine, rows, n, buf, cap):
    """Scale ``mine[rows[:n]]`` so it sums to at most ``cap / 12`` (``_mining_quotas``)."""
    for q in range(n):
        buf[q] = mine[rows[q]]
    tot = 0.0 + pairwise_sum(buf, 0, n)  # mine[m].sum(): the selected values, in row order
    if tot > cap / 12.0:
        x = cap / 12.0 / tot
        for q in range(n):
            mine[rows[q]] *= x


@jit
def _mining_quotas(mine, miner, country, heavy, pq, hq, h_share):
    """``RareEarthModel._mining_quotas``: each country's quota caps its miners' (P,) output.

    A quota split by ore first (heavy-rich mines, ``heavy >= h_share``, to ``hq``; the others to
    what is left of ``pq``), then every country's total quota; each sum as numpy sums.
    """
    p = mine.size
    rows = np.empty(p, dtype=np.intp)
    buf = np.empty(p)
    for c in range(pq.size):
        if not math.isfinite(hq[c]):
            continue
        for part in range(2):
            n = 0
            for r in range(p):
                if miner[r] and country[r] == c and ((heavy[r] >= h_share[c]) == (part == 0)):
                    rows[n] = r
                    n += 1
            d = pq[c] - hq[c]
            cap = hq[c] if part == 0 else (0.0 if 0.0 > d else d)  # Python's max(d, 0.0)
            _cap_to_quota(mine, rows, n, buf, cap)
    for c in range(pq.size):
        if not math.isfinite(pq[c]):
            continue
        n = 0
        for r in range(p):
            if miner[r] and country[r] == c:
                rows[n] = r
                n += 1
        _cap_to_quota(mine, rows, n, buf, pq[c])


@jit
def plan_output(
    p,
    capacity,
    ramp_cap,
    ramp_left,
    active,
    idle,
    prospect,
    prospect_size,
    prospect_cost,
    unit_cost,
    proj_size,
    proj_left,
    proj_capex_left,
    exp_sales,
    comp,
    ramp_months,
    run_rate,
    op_margin,
    run_floor,
    band,
    band2,
    rate_adjust,
    probe_share,
    stock_months1,
    basket,
    stock,
    has_g,
    basket_div,
    miner,
    sep,
    mag,
    rec,
    nd,
    hv,
    nd_div,
    has_hv,
    hv_div,
    ht,
    sep_yield,
    country,
    pq,
    hq,
    h_share,
):
    """Finished projects, capacity, run rates and the output of every producer but the quotas.

    The numpy code of ``_plan_production`` up to the recyclers' share of scrap (which needs a
    matrix product), fused (``p`` producers):

    - projects done (``proj_size > 0``, ``proj_left <= 0``) come online: a held deposit blends
      its cost into the firm's, capacity grows and ramps up, what was not built stays a
      prospect, and a plant with no expected sales expects half its output (``fresh``);
    - ``monthly`` capacity (``_monthly_capacity``), then the ramp-up moves on a month (when any
      producer ramps: then every producer's finished ramp is cleared);
    - the run rate closes ``rate_adjust`` of the gap to the supply response, above the floor;
    - miners' output, separators' throughput, magnet makers' output (the ``_sales_plan`` of
      each), recyclers' capacity;
    - the mining quotas (``pq``, and ``hq`` for heavy-rich ore from ``h_share``; per year) by
      home ``country``, as ``_mining_quotas`` does.

    Returns:
        (monthly, rate, mine, through, make, rec_cap, out, used): (P,) each and (P, I) output
        and inputs used so far (the mines' columns and the recyclers' oxide still to add).
    """
    ni = exp_sales.shape[1]
    ng = basket.shape[1]
    ramp = max(ramp_months, 1)
    # does any producer ramp up this month (once finished projects come online)? Then every
    # producer's ramp moves on a month (the numpy code's `if ramping.any()`)
    any_ramp = False
    for r in range(p):
        done = proj_size[r] > 0 and proj_left[r] <= 0
        if (ramp_months > 0) if done else (ramp_left[r] > 0):
            any_ramp = True
            break
    monthly = np.empty(p)
    rate = np.empty(p)
    mine = np.empty(p)
    through = np.empty(p)
    make = np.empty(p)
    rec_cap = np.empty(p)
    out = np.zeros((p, ni))
    used = np.zeros((p, ni))
    for r in range(p):
        if proj_size[r] > 0 and proj_left[r] <= 0:  # the project comes online
            new = proj_size[r]
            if prospect_cost[r] > 0 and capacity[r] > 0:
                old = capacity[r]
                unit_cost[r] = (old * unit_cost[r] + new * prospect_cost[r]) / (old + new)
            capacity[r] += new
            ramp_cap[r] = new
            ramp_left[r] = ramp_months
            active[r] = True
            prospect_size[r] = _max(prospect_size[r] - new, 0.0)
            prospect[r] = prospect_size[r] > 0
            if not prospect[r]:
                prospect_cost[r] = 0.0
            proj_size[r] = 0.0
            proj_capex_left[r] = 0.0
            if _row_sum(exp_sales, r) == 0:
                half = 0.5 * (capacity[r] / 12.0)
                for i in range(ni):
                    exp_sales[r, i] = half * comp[r, i]
        # running capacity less what still ramps, per month
        cap = capacity[r] - ramp_cap[r] * (ramp_left[r] / ramp)
        mo = _max(cap, 0.0) / 12.0 if (active[r] and not idle[r]) else 0.0
        monthly[r] = mo
        if any_ramp:
            left = ramp_left[r] - 1
            ramp_left[r] = left if left > 0 else 0
            if ramp_left[r] <= 0:
                ramp_cap[r] = 0.0
        # run rate toward the supply response: min(max((m + band) / 2band, 0), 1)
        x = run_rate[r, 0]
        resp = _min(_max((op_margin[r] + band) / band2, 0.0), 1.0)
        x += rate_adjust * (resp - x)
        x = _max(x, run_floor[r])
        run_rate[r, 0] = x
        rate[r] = x
        # miners: the group most in demand decides (sales plan per group / basket share)
        sells = 0.0
        for g in range(ng):
            bg = mo * basket[r, g]
            e = _max(exp_sales[r, g], probe_share * bg)
            w = e + (stock_months1 * e - stock[r, g]) / 2.0
            w = _min(_max(w, 0.0), bg)
            s = w / basket_div[r, g] if has_g[r, g] else 0.0
            sells = s if g == 0 else _max(sells, s)
        mine[r] = _max(_min(mo * x, sells), mo * run_floor[r]) if miner[r] else 0.0
        # separators: the concentrate held, up to capacity
        conc_tot = 0.0
        for g in range(ng):
            conc_tot += stock[r, g]
        th = _min(mo, conc_tot) if sep[r] else 0.0
        through[r] = th
        take = th / conc_tot if conc_tot > 0 else 0.0
        for g in range(ng):
            q = stock[r, g] * take
            used[r, g] += q
            out[r, 3 + g] += q * sep_yield
        # magnet makers: sales plan within capacity, oxide in stock
        e = exp_sales[r, ni - 2] + exp_sales[r, ni - 1]
        held = stock[r, ni - 2] + stock[r, ni - 1]
        e = _max(e, probe_share * mo)
        w = e + (stock_months1 * e - held) / 2.0
        w = _min(_max(w, 0.0), mo)
        can_nd = stock[r, 4] / nd_div[r]
        can_hv = stock[r, 5] / hv_div[r] if has_hv[r] else np.inf
        mk = _min(_min(w, can_nd), can_hv) if mag[r] else 0.0
        make[r] = mk
        used[r, 4] += mk * nd[r]
        used[r, 5] += mk * hv[r]
        out[r, ni - 2] += mk * (1.0 - ht[r])
        out[r, ni - 1] += mk * ht[r]
        rec_cap[r] = mo if rec[r] else 0.0
    _mining_quotas(mine, miner, country, basket[:, 2], pq, hq, h_share)
    return monthly, rate, mine, through, make, rec_cap, out, used


@jit
def plan_projects(
    p,
    mine,
    through,
    make,
    rec_cap,
    rate,
    monthly,
    eol,
    cap_c,
    country,
    basket,
    rec,
    miner,
    out,
    unit_cost,
    kg_per_t,
    utilisation,
    capacity,
    active,
    idle,
    prospect,
    prospect_size,
    proj_size,
    proj_left,
    proj_capex_left,
    proj_bad_months,
    abandon_after,
    u,
    kinds,
    pool_on,
    finance_pool,
    kind_pool,
    capex_per_tpy,
    expected_margin,
    hurdle,
    hurdle_div,
    expansion_share,
    expansion_util,
    pipeline_share,
    start_prob,
    comp,
    hold_months,
):
    """The rest of the month's output, utilisation, and which producers start a project.

    The mines' output by group and the recyclers' (the country's end-of-life scrap ``eol``
    over its recyclers' capacity ``cap_c``, at most all of it), units, cost and smoothed
    utilisation; then the numpy code of ``_start_and_advance_projects`` up to the projects
    that start (abandonment, the host's finance pool share, the stage's utilisation and
    pipeline by kind, summed in row order as ``np.bincount`` does, the start draw ``u``); and
    the miners' hold limit.

    Returns:
        (units, cost, rec_out, go, limit): (P,) each, ``go`` a mask of the producers that start
        a project, and (P, I) the most a miner holds of each item.
    """
    ni = out.shape[1]
    ng = basket.shape[1]
    units = np.empty(p)
    cost = np.empty(p)
    rec_out = np.empty(p)
    limit = np.empty((p, ni))
    cap_k = np.zeros(5)
    used_k = np.zeros(5)
    pipe_k = np.zeros(5)
    # the share of recyclers' capacity end-of-life scrap fills, per country
    avail = np.empty(cap_c.size)
    for c in range(cap_c.size):
        avail[c] = _min(eol[c] / cap_c[c], 1.0) if cap_c[c] > 0 else 0.0
    for r in range(p):
        m = mine[r]
        for g in range(ng):
            out[r, g] = m * basket[r, g]
        ro = rec_cap[r] * avail[country[r]] * rate[r]
        rec_out[r] = ro
        rf = 1.0 if rec[r] else 0.0
        for g in range(ng):
            out[r, 3 + g] += ro * basket[r, g] * rf
        un = m + through[r] + make[r] + ro
        units[r] = un
        cost[r] = un * kg_per_t * unit_cost[r]
        mo = monthly[r]
        util = un / _max(mo, 1e-12) if mo > 0 else 0.0
        utilisation[r] += 0.1 * (util - utilisation[r])
        # projects under way advance a month; sustained expected losses abandon them
        if proj_size[r] > 0:
            proj_left[r] -= 1
            if proj_bad_months[r] >= abandon_after:
                proj_size[r] = 0.0
                proj_capex_left[r] = 0.0
                proj_bad_months[r] = 0
        k = kinds[r]
        on = capacity[r] * (1.0 if active[r] else 0.0)
        cap_k[k] += on
        used_k[k] += on * utilisation[r]
        pipe_k[k] += proj_size[r]
        lim = hold_months * mo
        mf = 1.0 if miner[r] else 0.0
        for i in range(ni):
            limit[r, i] = lim * comp[r, i] * mf

    stage = np.empty(5)
    share = np.empty(5)
    for k in range(5):
        stage[k] = used_k[k] / _max(cap_k[k], 1e-12) if cap_k[k] > 0 else 1.0
        share[k] = pipe_k[k] / _max(cap_k[k], 1e-12) if cap_k[k] > 0 else 0.0
    go = np.zeros(p, dtype=np.bool_)
    for r in range(p):
        subsidy = 0.0
        if pool_on:  # _pool_share: the host's pool against the project's capex, at most 80%
            size = prospect_size[r] if prospect[r] else expansion_share * capacity[r]
            capex = _max(size * capex_per_tpy[r], 1.0)
            subsidy = _min(finance_pool[country[r], kind_pool[r]] / capex, 0.8)
        eligible = proj_size[r] == 0 and ((active[r] and not idle[r]) or prospect[r])
        k = kinds[r]
        busy = prospect[r] or (_min(utilisation[r], stage[k]) >= expansion_util)
        margin = expected_margin[r] + subsidy
        pull = _min(_max(margin / hurdle_div, 0.0), 10.0)
        crowd = 1.0
        if pipeline_share > 0:
            crowd = _min(_max(1.0 - share[k] / pipeline_share, 0.0), 1.0)
        go[r] = eligible and busy and (margin > hurdle) and (u[r] < start_prob * pull * crowd)
    return units, cost, rec_out, go, limit


@jit
def start_projects(
    rows,
    size,
    kind_n,
    build_by_kind,
    build_months,
    country,
    miner_n,
    mine_build,
    processing_n,
    permitted,
    permit,
    extra,
    mult,
    capex_per_tpy,
    pool,
    cash,
    proj_size,
    proj_left,
    proj_capex_left,
    proj_bad_months,
):
    """``RareEarthModel._start_project``: projects of ``size`` t/yr start at the (distinct) rows.

    Lead time: the permit (none if held) plus the build time (the firm's own, else the host's
    mine build time for a mine, else its kind's), plus a tech ban's extra months for
    processing; capex per t/yr times a tech ban's cost multiple for processing. Where any
    finance pool holds money, the host's pool of the kind pays up to 80% of capex, in row order.
    """
    pool_on = False
    for c in range(pool.shape[0]):
        for k in range(pool.shape[1]):
            if pool[c, k] != 0:
                pool_on = True
    for q in range(rows.size):
        r = rows[q]
        k = min(kind_n[r], 3)
        bm = build_months[r]
        build = bm if bm > 0 else build_by_kind[k]
        h = country[r]
        if miner_n[r] and mine_build[h] > 0 and bm == 0:
            build = mine_build[h]
        proc = processing_n[r]
        lead = (0.0 if permitted[r] else permit[h]) + build + (extra[h] if proc else 0.0)
        capex = size[q] * capex_per_tpy[r] * (mult[h] if proc else 1.0)
        if pool_on:
            have = pool[h, k]
            cover = 0.8 * capex
            paid = cover if cover < have else have  # Python's min(have, cover)
            pool[h, k] = have - paid
            cash[r] += paid
        proj_size[r] = size[q]
        proj_left[r] = np.int32(_max(lead, 1.0))
        proj_capex_left[r] = capex
        proj_bad_months[r] = 0


@jit
def state_expansion(in_c, capacity, active, idle, proj_size, need, room):
    """One plan of ``RareEarthModel._state_directed_capacity`` for one country's firms.

    ``in_c`` marks the (P,) producers the plan covers. What they have (capacity online plus
    under construction, each summed as numpy sums the selected values) falls short of ``need``
    times ``1 + room`` by the gap; beyond 1% of ``need``, the operating ones with capacity and
    no project share the gap pro rata to capacity.

    Returns:
        (rows, size): the producers that expand and by how many t/yr (empty: none).
    """
    p = in_c.size
    on = np.empty(p)
    pipe = np.empty(p)
    n = 0
    for r in range(p):
        if in_c[r]:
            on[n] = capacity[r] * (1.0 if active[r] else 0.0)
            pipe[n] = proj_size[r]
            n += 1
    have = (0.0 + pairwise_sum(on, 0, n)) + (0.0 + pairwise_sum(pipe, 0, n))
    gap = need * (1.0 + room) - have
    rows = np.empty(p, dtype=np.intp)
    m = 0
    if not gap <= 0.01 * need:
        for r in range(p):
            if in_c[r] and active[r] and not idle[r] and proj_size[r] == 0 and capacity[r] > 0:
                rows[m] = r
                on[m] = capacity[r]
                m += 1
    total = 0.0 + pairwise_sum(on, 0, m)
    size = np.empty(m)
    for q in range(m):
        size[q] = gap * on[q] / total
    return rows[:m].copy(), size
