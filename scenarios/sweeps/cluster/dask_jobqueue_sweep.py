r"""Run a Lanthanide sweep on a Slurm or PBS cluster through dask-jobqueue.

Install the extra first (``pip install -e ".[cluster]"``), then, on the login node::

    python dask_jobqueue_sweep.py slurm SWEEP.toml runs/my-sweep --jobs 10 --cores 8 \\
        --memory 16GB --walltime 02:00:00 --queue normal \\
        --prologue "source $HOME/lanthanide/.venv/bin/activate"
    python dask_jobqueue_sweep.py pbs SWEEP.toml runs/my-sweep --jobs 10 --cores 8 ...

The script starts a Dask scheduler in this process, asks the batch system for ``--jobs`` jobs,
each running one single-threaded Dask worker per core (the model is CPU-bound Python), runs
the sweep on them as ``lanthanide sweep --scheduler`` would (results stream into
``OUT/results/``), merges the parts into ``OUT/results.parquet`` and releases the jobs.
``--resume`` continues an interrupted sweep; ``--dry-run`` prints the job script and exits.
The scheduler and the job scripts use the shipped sweep settings for Dask
(``experiments.sweep.DASK_CONFIG_DIR``: less frequent housekeeping, no stack sampling; see
docs/SWEEPS.md), unless ``--dask-defaults`` is given or ``DASK_CONFIG`` is already set.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, start the cluster, run the sweep, collect."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("system", choices=("slurm", "pbs"))
    p.add_argument("sweep", help="a sweep file or built-in sweep name")
    p.add_argument("out", help="output folder")
    p.add_argument("--jobs", type=int, default=4, help="batch jobs to request (default 4)")
    p.add_argument("--cores", type=int, default=8, help="cores per job (one worker each)")
    p.add_argument("--memory", default="16GB", help="memory per job, e.g. 16GB")
    p.add_argument("--walltime", default="02:00:00", help="walltime per job, HH:MM:SS")
    p.add_argument("--queue", default=None, help="partition (Slurm) or queue (PBS)")
    p.add_argument("--account", default=None, help="account or project to charge")
    p.add_argument("--prologue", action="append", default=[], help="shell line run first")
    p.add_argument("--resume", action="store_true", help="skip runs already recorded")
    p.add_argument("--dry-run", action="store_true", help="print the job script and exit")
    p.add_argument(
        "--dask-defaults", action="store_true", help="keep Dask's own housekeeping settings"
    )
    args = p.parse_args(argv)

    from experiments.sweep import DASK_CONFIG_DIR, collect, load_sweep, run_sweep

    prologue = list(args.prologue)
    if not args.dask_defaults and "DASK_CONFIG" not in os.environ:
        os.environ["DASK_CONFIG"] = str(DASK_CONFIG_DIR)  # read below, when Dask is imported
        prologue.append(f"export DASK_CONFIG={DASK_CONFIG_DIR}")

    from dask_jobqueue import PBSCluster, SLURMCluster

    sweep = load_sweep(args.sweep)  # a bad sweep file fails here, before any job is queued
    kind = SLURMCluster if args.system == "slurm" else PBSCluster
    cluster = kind(
        cores=args.cores,
        processes=args.cores,
        memory=args.memory,
        walltime=args.walltime,
        queue=args.queue,
        account=args.account,
        job_script_prologue=prologue,
    )
    try:
        if args.dry_run:
            print(cluster.job_script())
            return 0
        cluster.scale(jobs=args.jobs)
        print(f"scheduler at {cluster.scheduler_address}; {args.jobs} jobs requested", flush=True)
        counts = run_sweep(sweep, args.out, scheduler=cluster.scheduler_address, resume=args.resume)
    finally:
        cluster.close()
    df = collect(args.out)
    where = f"{args.out}/results.parquet"
    print(f"{counts['ran']} runs now, {counts['failed']} failed; {len(df)} runs in {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
