#!/usr/bin/env bash
# Fresh-machine set-up and the main job on data the project generates itself:
# installs system packages, builds maestro, generates a 100,000-packet trace of 1,000
# bidirectional UDP/TCP flows, and runs the firewall and the NAT over it. Outputs: out/.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    # pkg-config and a C toolchain for -sys crates; Z3 (the analyzer links the system
    # libz3, and z3-sys generates its bindings with libclang); later stages add libdpdk-dev.
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pkg-config build-essential libz3-dev libclang-dev >/dev/null
fi

cargo build --release --locked -p maestro
maestro=target/release/maestro
mkdir -p out
"$maestro" trafficgen --flows 1000 --packets 100000 --reply-ratio 0.5 --udp-share 0.7 \
    --seed 1 --out out/demo.pcapng
# The firewall lets every reply through: each one follows its LAN request.
"$maestro" run nfs/fw --pcap out/demo.pcapng --out out/demo-fw.pcapng
# The NAT translates every LAN packet and drops the synthetic replies: they answer the
# client's own address, not the NAT's external port (a NAT-aware reply mode belongs to the
# trafficgen issue).
"$maestro" run nfs/nat --pcap out/demo.pcapng --out out/demo-nat.pcapng
