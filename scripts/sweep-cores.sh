#!/usr/bin/env bash
# The core-scaling sweep behind the paper's figures, for a machine with many cores:
# cores 1,2,4,8,12,16 (those the machine has; its CPU count is added when below 16),
# the library NFs, every strategy, 64 B and IMIX frames, no churn and Maestro's
# 25M flows/min, uniform and Zipf 1.26 flows. Builds first, measures afterwards: nothing
# compiles while the sweep runs. Run it on an otherwise idle machine.
#
#   scripts/sweep-cores.sh [OUT] [extra `maestro bench` options...]
#
# Environment: NFS (default fw,nat,lb,cl,psd,pol,bridge,nop), PACKETS (default 4M),
# REPS (default 5), SIZES (64,imix), CHURN (0,25M), ZIPF (0,1.26), TRACES (trace cache
# folder; default OUT/traces). Disk: one trace per (size, churn, skew, side): 4M packets
# are about 370 MB at 64 B and 1.5 GB at IMIX, 4-5 GB per side for the defaults; add
# --clean-traces to delete them afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

cpus=$(nproc)
cores=""
for c in 1 2 4 8 12 16; do
    if [ "$c" -le "$cpus" ]; then cores="${cores:+$cores,}$c"; fi
done
if [ "$cpus" -lt 16 ] && [[ ",$cores," != *",$cpus,"* ]]; then
    cores="$cores,$cpus"
fi

out=${1:-results/sweeps/$(hostname)-$(date -u +%Y%m%d-%H%M)}
shift || true
nfs=${NFS:-fw,nat,lb,cl,psd,pol,bridge,nop}

cargo build --release --locked -p maestro
maestro=${CARGO_TARGET_DIR:-target}/release/maestro

# Generated binaries are built by `bench` itself before the first measurement.
echo "sweep-cores: cores $cores on $cpus CPUs, NFs $nfs, into $out" >&2
exec "$maestro" bench --nf "$nfs" --strategies seq,sn,locks,tm --cores "$cores" \
    --sizes "${SIZES:-64,imix}" --churn "${CHURN:-0,25M}" --zipf "${ZIPF:-0,1.26}" \
    --packets "${PACKETS:-4M}" --reps "${REPS:-5}" ${TRACES:+--traces "$TRACES"} \
    --out "$out" "$@"
