#!/usr/bin/env bash
# Fresh-machine set-up and the main job on data the project generates itself:
# installs system packages, builds maestro, generates a 100,000-packet trace of 1,000
# bidirectional UDP/TCP flows, and runs the firewall and the NAT over it.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    # pkg-config and a C toolchain for -sys crates; later stages add libz3-dev and libdpdk-dev.
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pkg-config build-essential >/dev/null
fi

cargo build --release --locked -p maestro
maestro=target/release/maestro
mkdir -p out
"$maestro" trafficgen --flows 1000 --packets 100000 --reply-ratio 0.5 --udp-share 0.7 \
    --seed 1 --out out/demo.pcapng
for nf in fw nat; do
    "$maestro" run "nfs/$nf" --pcap out/demo.pcapng --out "out/demo-$nf.pcapng"
done
