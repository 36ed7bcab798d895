#!/bin/bash
# A Lanthanide sweep as a Slurm job array: task I of N runs the I-th deterministic slice.
#
#   sbatch --array=1-20 slurm-array.sh SWEEP.toml runs/my-sweep
#   # when every task has finished (or chain it: see the last lines of this file)
#   lanthanide sweep collect runs/my-sweep
#
# N is taken from the array size, so change only --array. Each task writes its own Parquet parts
# into OUT/shard-I/results/; a task that is killed or pre-empted can be resubmitted with the same
# index: --resume skips the runs it already recorded.
#SBATCH --job-name=lanthanide-sweep
#SBATCH --cpus-per-task=4
#SBATCH --mem-per-cpu=1G
#SBATCH --time=02:00:00
#SBATCH --output=lanthanide-%A_%a.log
set -euo pipefail

SWEEP=${1:?usage: sbatch --array=1-N slurm-array.sh SWEEP.toml OUT}
OUT=${2:?usage: sbatch --array=1-N slurm-array.sh SWEEP.toml OUT}
I=${SLURM_ARRAY_TASK_ID:?run this with sbatch --array=1-N}
N=${SLURM_ARRAY_TASK_COUNT:?run this with sbatch --array=1-N}

# activate the environment where Lanthanide is installed (edit to suit your site)
# source "$HOME/lanthanide/.venv/bin/activate"

lanthanide sweep "$SWEEP" --out "$OUT/shard-$I" --shard "$I/$N" \
    --workers "${SLURM_CPUS_PER_TASK:-1}" --resume

# To merge automatically when the whole array has succeeded, submit like this instead:
#   jid=$(sbatch --parsable --array=1-20 slurm-array.sh SWEEP.toml runs/my-sweep)
#   sbatch --dependency=afterok:$jid --wrap "lanthanide sweep collect runs/my-sweep"
