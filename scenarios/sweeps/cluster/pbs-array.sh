#!/bin/bash
# A Lanthanide sweep as a PBS Pro job array: sub-job I of N runs the I-th deterministic slice.
#
#   qsub -J 1-20 -v SWEEP=SWEEP.toml,OUT=runs/my-sweep,N=20 pbs-array.sh
#   # when every sub-job has finished (or chain it: see the last lines of this file)
#   lanthanide sweep collect runs/my-sweep
#
# PBS does not tell a sub-job the size of its array, so pass N (the same number as in -J 1-N).
# Each sub-job writes its own Parquet parts into OUT/shard-I/results/; a failed sub-job can be
# rerun with the same index: --resume skips the runs it already recorded.
#PBS -N lanthanide-sweep
#PBS -l select=1:ncpus=4:mem=4gb
#PBS -l walltime=02:00:00
#PBS -j oe
set -euo pipefail
cd "${PBS_O_WORKDIR:-.}"

: "${SWEEP:?pass -v SWEEP=...,OUT=...,N=...}" "${OUT:?pass OUT}" "${N:?pass N}"
I=${PBS_ARRAY_INDEX:?run this with qsub -J 1-N}

# activate the environment where Lanthanide is installed (edit to suit your site)
# source "$HOME/lanthanide/.venv/bin/activate"

lanthanide sweep "$SWEEP" --out "$OUT/shard-$I" --shard "$I/$N" --workers "${NCPUS:-1}" --resume

# To merge automatically when the whole array has succeeded:
#   jid=$(qsub -J 1-20 -v SWEEP=SWEEP.toml,OUT=runs/my-sweep,N=20 pbs-array.sh)
#   echo "cd $PWD && lanthanide sweep collect runs/my-sweep" | qsub -W depend=afterok:$jid
