"""The ``lanthanide`` command line.

Bad input (an unknown scenario, malformed TOML, an unknown or out-of-range field, a bad
``--set``) prints one line naming the problem and what is allowed, exits with code 2, shows no
traceback and leaves no output folder behind.
"""

from __future__ import annotations

import argparse
import math
import sys
from datetime import datetime
from pathlib import Path

from experiments.runner import atomic_dir

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """Bad command-line input (reported in one line, exit code 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, no usage dump
        raise UsageError(f"{self.prog}: {message}")


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="lanthanide", description="Rare-earth geopolitics: model, experiments, game.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    r = sub.add_parser("run", help="run a scenario and its counterfactual")
    r.add_argument(
        "scenario",
        nargs="?",
        default="default",
        help="built-in name (see 'lanthanide scenarios') or a TOML file",
    )
    r.add_argument("--seed", type=_nonneg_int, default=None, help="random seed (0 is a seed)")
    r.add_argument("--months", type=_pos_int, default=None, help="horizon in months (1-1200)")
    r.add_argument(
        "--firms",
        type=_pos_int,
        default=None,
        help="total number of firm agents (about 50 to 100,000)",
    )
    r.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario field, e.g. --set market.leakage_share=0.2",
    )
    r.add_argument("--out", default=None, help="output folder (default: a new folder in runs/)")
    r.add_argument("--no-counterfactual", action="store_true", help="skip the counterfactual run")
    r.add_argument(
        "--workers",
        type=_pair_workers,
        default=None,
        help="processes for the run and its counterfactual, 1-2 (default: 2 where it helps)",
    )
    pt = sub.add_parser("patterns", help="check history-2010 against the observed record")
    pt.add_argument("--seeds", type=_pos_int, default=20, help="number of seeds (default 20)")
    pt.add_argument(
        "--workers", type=_pos_int, default=None, help="parallel processes (default: all cores)"
    )
    pt.add_argument("--out", default=None, help="output folder (default: a new one in runs/)")
    cs = sub.add_parser("compare-strategies", help="verdicts under every state strategy")
    cs.add_argument("scenario", help="built-in name or TOML file")
    cs.add_argument("--seeds", type=_pos_int, default=10, help="seeds per strategy (default 10)")
    cs.add_argument("--months", type=_pos_int, default=None, help="horizon in months")
    cs.add_argument("--workers", type=_pos_int, default=None, help="processes (default: all cores)")
    cs.add_argument("--out", default=None, help="output folder (default: a new one in runs/)")
    ct = sub.add_parser("contrasts", help="temporary/sustained, targeted/global, heavy/broad")
    ct.add_argument("--seeds", type=_pos_int, default=10, help="seeds per design (default 10)")
    ct.add_argument("--months", type=_pos_int, default=120, help="horizon (default 120)")
    ct.add_argument("--workers", type=_pos_int, default=None, help="processes (default: all cores)")
    ct.add_argument("--out", default=None, help="output folder (default: a new one in runs/)")
    sw = sub.add_parser("sweep", help="run a sweep file, or 'sweep collect DIR' to merge shards")
    sw.add_argument(
        "target",
        nargs="+",
        metavar="SWEEP",
        help="a sweep file or built-in sweep name, or: collect DIR",
    )
    sw.add_argument("--out", default=None, help="output folder (required for a sweep)")
    group = sw.add_mutually_exclusive_group()
    group.add_argument(
        "--workers", type=_pos_int, default=None, help="local processes (default: all cores)"
    )
    group.add_argument("--scheduler", default=None, help="a Dask scheduler, tcp://HOST:PORT")
    sw.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="run only the I-th of N deterministic slices (batch arrays); with --workers too",
    )
    sw.add_argument("--resume", action="store_true", help="skip runs already recorded")
    ex = sub.add_parser("explore", help="start the explorer (a web page) on this machine")
    ex.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ex.add_argument("--port", type=_port, default=8765, help="TCP port (default 8765)")
    sub.add_parser("setup-ui", help="put the explorer's front-end files in place (uses npm)")
    b = sub.add_parser("bench", help="speed and scale benchmarks (python -m benchmarks)")
    b.add_argument("--quick", action="store_true", help="fewer months and repeats")
    b.add_argument("--json", metavar="PATH", help="also write all figures to this JSON file")
    b.add_argument("--profile", action="store_true", help="add cProfile hot spots")
    an = sub.add_parser("analyze", help="tables, sensitivity, PRIM and charts of a sweep or run")
    an.add_argument("folder", help="a sweep folder (lanthanide sweep --out) or a run folder")
    wg = sub.add_parser("wargame", help="serve the classroom wargame (pages and /api)")
    wg.add_argument("--host", default="127.0.0.1", help="address (0.0.0.0 for a classroom LAN)")
    wg.add_argument("--port", type=_port, default=8766, help="TCP port (default 8766)")
    wg.add_argument("--db", default=None, help="SQLite file (default: the user's data folder)")
    wg.add_argument(
        "--public-url", default=None, help="address players use (default: this machine's)"
    )
    sub.add_parser("scenarios", help="list the built-in scenarios")
    v = sub.add_parser("validate", help="check a scenario or sweep file")
    v.add_argument("file", help="a scenario or sweep TOML file, or a built-in name")
    return p


def _pos_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return value


def _pair_workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value not in (1, 2):
        raise argparse.ArgumentTypeError(f"{value} must be 1 or 2")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} must be 1-65535")
    return value


def _fmt(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    ax = abs(x)
    if ax >= 1e9:
        return f"{x / 1e9:,.2f} bn"
    if ax >= 1e4:
        return f"{x:,.0f}"
    if ax >= 10:
        return f"{x:,.1f}"
    if ax < 5e-4:  # rounding noise (a stock emptied to -1e-10 t) prints as zero, not "-0.000"
        return "0.000"
    return f"{x:,.3f}"


SHOWN = (
    "coercer_share_mining_end",
    "coercer_share_separation_end",
    "coercer_share_magnet_end",
    "coercer_revenue_discounted_usd",
    "target_dependence_end",
    "ex_coercer_capacity_t_per_year",
    "target_lost_output_usd",
    "peak_price_multiple",
    "target_stockpile_t_end",
)
"""The outcomes the summary prints (labels: ``abm.outcomes.OUTCOME_LABELS``)."""


def _print_summary(summary: dict, out: Path, manifest: dict) -> None:
    o = summary["outcomes"]
    print(
        f"Lanthanide: {summary['scenario']} from {summary['start']}, {summary['months']} months,"
        f" seed {summary['seed']}, {manifest['firm_agents']} firm agents"
    )
    print(f"{'outcome':54s} {'scenario':>14s} {'counterfactual':>15s} {'delta':>14s}")
    from abm.outcomes import OUTCOME_LABELS

    for key in SHOWN:
        label = OUTCOME_LABELS[key]
        v = o.get(key)
        if v is None:
            continue
        print(
            f"{label:54s} {_fmt(v['run']):>14s} {_fmt(v['counterfactual']):>15s} "
            f"{_fmt(v['delta']):>14s}"
        )
    c = summary["concession"]
    conc = f"obtained {c['date']}" if c["obtained"] else "not obtained"
    verdict = summary["verdict"] or "- (no counterfactual run)"
    print(f"concession: {conc}   verdict: {verdict}")
    for line in summary.get("explanation") or []:
        print(f"  - {line}")
    walls = manifest["wall_seconds"]
    side = " (side by side, 2 processes)" if manifest.get("processes") == 2 else ""
    print(f"simulation time: {', '.join(f'{k} {v:.2f} s' for k, v in walls.items())}{side}")
    print(
        f"wrote {out}/ (timeseries.parquet, summary.json, manifest.json, events.csv, headline.png)"
    )


def _default_out(name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{Path(name).stem}-{stamp}"
    out, k = base, 1
    while out.exists():
        k += 1
        out = Path(f"{base}-{k}")
    return out


def cmd_run(args) -> int:
    """``lanthanide run``."""
    from experiments.runner import run_scenario

    result = run_scenario(
        args.scenario,
        seed=args.seed,
        months=args.months,
        firms=args.firms,
        overrides=args.overrides,
        with_counterfactual=not args.no_counterfactual,
        workers=args.workers,
    )
    out = Path(args.out) if args.out else _default_out(args.scenario)
    result.write(out)
    _print_summary(result.summary, out, result.manifest)
    return 0


def _print_tally(summary) -> None:
    print(
        f"{'':36s} {'runs':>5s} {'succ.':>6s} {'backf.':>6s} {'mixed':>6s} {'none':>6s} "
        f"{'conc.':>6s} {'share pp':>9s} {'cap t/yr':>10s} {'revenue':>8s}"
    )
    for r in summary.to_dict("records"):
        print(
            f"{r['label'][:36]:36s} {r['runs']:>5d} {r['share_succeeded']:>6.0%} "
            f"{r['share_backfired']:>6.0%} {r['share_mixed']:>6.0%} {r['share_no_effect']:>6.0%} "
            f"{r['concession_rate']:>6.0%} {r['median_share_delta_pp']:>+9.1f} "
            f"{r['median_capacity_delta_t_per_year']:>+10,.0f} "
            f"{r['median_revenue_delta_share']:>+8.1%}"
        )


def cmd_compare(args) -> int:
    """``lanthanide compare-strategies``."""
    from abm.scenario import load_scenario
    from experiments.compare import compare_strategies, tally, verdict_chart

    load_scenario(args.scenario)  # validate first: a bad file fails before any run
    runs = compare_strategies(
        args.scenario, seeds=args.seeds, workers=args.workers, months=args.months
    )
    summary = tally(runs)
    out = Path(args.out) if args.out else _default_out(f"compare-{Path(args.scenario).stem}")

    def write(tmp: Path) -> None:
        runs.to_csv(tmp / "runs.csv", index=False)
        summary.to_csv(tmp / "strategies.csv", index=False)
        verdict_chart(
            summary,
            tmp / "verdicts.png",
            f"{args.scenario}: verdicts by state strategy ({args.seeds} seeds)",
        )

    atomic_dir(out, write)
    print(
        f"{args.scenario}: verdicts by state strategy over {args.seeds} seeds "
        "(medians are deltas against the counterfactual)"
    )
    _print_tally(summary)
    print(f"wrote {out}/ (runs.csv, strategies.csv, verdicts.png)")
    return 0


def cmd_contrasts(args) -> int:
    """``lanthanide contrasts``."""
    from experiments.compare import contrast_instruments, tally, verdict_chart

    runs = contrast_instruments(seeds=args.seeds, workers=args.workers, months=args.months)
    summary = tally(runs)
    out = Path(args.out) if args.out else _default_out("contrasts")

    def write(tmp: Path) -> None:
        runs.to_csv(tmp / "runs.csv", index=False)
        summary.to_csv(tmp / "contrasts.csv", index=False)
        verdict_chart(
            summary,
            tmp / "verdicts.png",
            f"Restriction designs on baseline-2025 ({args.seeds} seeds)",
        )

    atomic_dir(out, write)
    print(
        f"restriction designs on baseline-2025 over {args.seeds} seeds, {args.months} months "
        "(medians are deltas against the counterfactual)"
    )
    _print_tally(summary)
    print(f"wrote {out}/ (runs.csv, contrasts.csv, verdicts.png)")
    return 0


def cmd_patterns(args) -> int:
    """``lanthanide patterns``: the pattern check over seeds, as a table, CSV and figures."""
    from experiments.patterns import overlay_figure, pattern_figure, run_patterns

    res, frames = run_patterns(seeds=args.seeds, workers=args.workers)
    out = Path(args.out) if args.out else _default_out("patterns")

    def write(tmp: Path) -> None:
        res.to_csv(tmp / "patterns.csv", index=False)
        pattern_figure(res, tmp / "patterns.png")
        overlay_figure(frames, tmp / "history_overlay.png")

    atomic_dir(out, write)
    print(f"history-2010 over {args.seeds} seeds against the record")
    print(
        f"{'check':48s} {'observed':>10s} {'median':>10s} {'10%':>10s} {'90%':>10s} "
        f"{'tolerance':>21s}  pass"
    )
    for r in res.to_dict("records"):
        tol = f"{_fmt(r['tolerance_lo'])}..{_fmt(r['tolerance_hi'])}"
        print(
            f"{str(r['pattern']) + '. ' + r['check']:48.48s} {_fmt(r['observed']):>10s} "
            f"{_fmt(r['model_median']):>10s} {_fmt(r['model_p10']):>10s} "
            f"{_fmt(r['model_p90']):>10s} {tol:>21s}  {'yes' if r['pass'] else 'NO'}"
        )
    seven = res[res["pattern"] > 0].groupby("pattern")["pass"].all()
    print(f"patterns passed: {int(seven.sum())} of {len(seven)}")
    print(f"wrote {out}/ (patterns.csv, patterns.png, history_overlay.png)")
    return 0


def _parse_shard(text: str) -> tuple[int, int]:
    parts = text.split("/")
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        i, n = int(parts[0]), int(parts[1])
        if n >= 1 and 1 <= i <= n:
            return i, n
    raise UsageError(f"--shard {text!r}: expected I/N with 1 <= I <= N, e.g. 3/10")


def cmd_sweep(args) -> int:
    """``lanthanide sweep SWEEP.toml --out DIR`` and ``lanthanide sweep collect DIR``."""
    from experiments.sweep import collect, load_sweep, run_sweep

    if args.target[0] == "collect":
        if len(args.target) != 2:
            raise UsageError("sweep collect: give one folder, e.g. lanthanide sweep collect runs/s")
        df = collect(args.target[1])
        ok = int((df["status"] == "ok").sum())
        print(
            f"collected {len(df)} runs ({ok} ok, {len(df) - ok} failed) into "
            f"{args.target[1]}/results.parquet"
        )
        return 0
    if len(args.target) != 1:
        raise UsageError("sweep: give one sweep file (or: sweep collect DIR)")
    if not args.out:
        raise UsageError("sweep: --out DIR is required")
    sweep = load_sweep(args.target[0])
    shard_of = _parse_shard(args.shard) if args.shard else None
    counts = run_sweep(
        sweep,
        args.out,
        workers=args.workers,
        scheduler=args.scheduler,
        shard_of=shard_of,
        resume=args.resume,
    )
    print(
        f"sweep {sweep.name}: {counts['tasks']} runs in this slice, {counts['ran']} run now, "
        f"{counts['skipped']} already recorded, {counts['failed']} failed; results in "
        f"{args.out}/results/ (merge with: lanthanide sweep collect {args.out})"
    )
    return 0


def cmd_analyze(args) -> int:
    """``lanthanide analyze DIR``: reads the results tables only, writes ``DIR/analysis/``."""
    from experiments.analyze import analyze

    res = analyze(args.folder)
    where = Path(args.folder) / "analysis"
    if res["kind"] == "run":
        print(f"run {args.folder}: verdict {res['verdict']}; wrote {where}/ (report.html, ...)")
        return 0
    ok = res["ok"]
    print(
        f"sweep {args.folder}: {len(ok)} ok runs; verdicts "
        + ", ".join(f"{k} {int(v)}" for k, v in res["verdicts"].items())
    )
    if res["goal"] is not None:
        print(f"goal {res['goal'].label}: met by {res['goal'].met(ok).mean():.0%} of runs")
    for name, pr in res["prim"].items():
        if pr is None:
            continue
        st = pr.stats
        limits = "; ".join(
            f"{r['factor']} {r['kind']} {r['value']}" for r in pr.box.to_dict("records")
        )
        print(
            f"PRIM {name}: box of {st['support']:.0%} of runs holds {st['coverage']:.0%} of cases "
            f"at density {st['density']:.0%} (base {st['base_density']:.0%}): "
            f"{limits or 'whole space'}"
        )
    if res["sensitivity"] is not None and len(res["sensitivity"]):
        sens = res["sensitivity"]
        col = "ST" if "ST" in sens else "mu_star"
        for outcome, g in sens.groupby("outcome", sort=False):
            top = g.sort_values(col, ascending=False).iloc[0]
            print(f"sensitivity {outcome}: largest {col} {top['factor']} ({top[col]:.2f})")
    print(f"wrote {where}/ (report.html, by_factor.csv, combinations.csv, PNG charts)")
    return 0


def cmd_scenarios(args) -> int:
    """``lanthanide scenarios``."""
    from abm.scenario import builtin_names, load_scenario

    for name in builtin_names():
        scn = load_scenario(name)
        print(f"{name:22s} {scn.start}  {scn.description}")
    return 0


def cmd_validate(args) -> int:
    """``lanthanide validate``: a scenario or a sweep file."""
    import tomllib

    from abm.scenario import load_scenario
    from experiments.sweep import SWEEPS_DIR, builtin_sweeps

    path = Path(args.file)
    if not path.is_file() and args.file in builtin_sweeps():
        path = SWEEPS_DIR / f"{args.file}.toml"
    if path.is_file():
        try:
            is_sweep = "base" in tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError:
            is_sweep = False  # load_scenario reports the malformed TOML
        if is_sweep:
            from experiments.sweep import load_sweep, tasks_for

            sw = load_sweep(path)
            print(
                f"{path}: valid sweep '{sw.name}' ({sw.design}, {len(sw.factors)} "
                f"factors, {len(tasks_for(sw))} runs of {sw.months} months on {sw.base})"
            )
            return 0
    scn = load_scenario(args.file)
    print(
        f"{args.file}: valid scenario '{scn.name}' ({scn.start}, {scn.months} months, "
        f"{len(scn.events)} events, {len(scn.named_firms)} named firms)"
    )
    return 0


def cmd_explore(args) -> int:
    """``lanthanide explore``: the Solara explorer (imports the UI stack only here)."""
    from viz.assets import AssetsError
    from viz.serve import explore

    try:
        return explore(args.host, args.port)
    except AssetsError as exc:
        raise UsageError(str(exc)) from None


def cmd_wargame(args) -> int:
    """``lanthanide wargame``: the classroom server (imports the UI stack only here)."""
    from viz.assets import AssetsError
    from viz.wargame.server import serve

    try:
        return serve(args.host, args.port, args.db, args.public_url)
    except AssetsError as exc:
        raise UsageError(str(exc)) from None


def cmd_setup_ui(args) -> int:
    """``lanthanide setup-ui``: fetch the explorer's front-end files with npm (once)."""
    from viz.assets import AssetsError, cache_dir, ensure_assets

    try:
        fetched = ensure_assets()
    except AssetsError as exc:
        raise UsageError(str(exc)) from None
    state = f"{len(fetched)} packages fetched" if fetched else "already in place"
    print(f"front-end files in {cache_dir()}: {state}")
    return 0


def cmd_bench(args) -> int:
    """``lanthanide bench``: the same as ``python -m benchmarks`` (never fails on speed)."""
    from benchmarks.__main__ import main as bench_main

    argv = ["--quick"] if args.quick else []
    argv += ["--json", args.json] if args.json else []
    argv += ["--profile"] if args.profile else []
    return bench_main(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 bad input)."""
    from abm.engine import EngineError
    from abm.engine import resolve as resolve_engine
    from abm.model import ScenarioRuntimeError
    from abm.scenario import ScenarioError

    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        resolve_engine(None, 0)  # a bad LANTHANIDE_ENGINE is bad input before anything runs
        handler = {
            "run": cmd_run,
            "patterns": cmd_patterns,
            "compare-strategies": cmd_compare,
            "contrasts": cmd_contrasts,
            "sweep": cmd_sweep,
            "analyze": cmd_analyze,
            "scenarios": cmd_scenarios,
            "validate": cmd_validate,
            "explore": cmd_explore,
            "setup-ui": cmd_setup_ui,
            "bench": cmd_bench,
            "wargame": cmd_wargame,
        }
        return handler[args.command](args)
    except (UsageError, ScenarioError, ScenarioRuntimeError, EngineError) as exc:
        print(f"lanthanide: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("lanthanide: interrupted; no output written", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
