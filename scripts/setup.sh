#!/usr/bin/env bash
# Fresh-machine set-up and the main job on data the project generates itself:
# installs system packages, builds maestro, generates a 100,000-packet trace of 1,000
# bidirectional UDP/TCP flows, and verifies the generated parallel firewall and NAT
# against their sequential meaning on it (plus adversarial traffic and the mutant
# self-test for the firewall). Outputs: out/.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    # pkg-config and a C toolchain for -sys crates; Z3 (the analyzer links the system
    # libz3, and z3-sys generates its bindings with libclang); DPDK 22.11 for dpdk-sys.
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pkg-config build-essential libz3-dev libclang-dev libdpdk-dev >/dev/null
fi

cargo build --release --locked -p maestro
maestro=target/release/maestro
mkdir -p out
"$maestro" trafficgen --flows 1000 --packets 100000 --reply-ratio 0.5 --udp-share 0.7 \
    --seed 1 --out out/demo.pcapng
# The firewall: the capture, adversarial traffic and the mutants (exit 1 on a divergence).
"$maestro" verify nfs/fw --pcap out/demo.pcapng --adversarial --mutants \
    --out-dir out/counterexamples --json out/verify-fw.json
# The NAT: shared-nothing is checked modulo renaming of its external ports.
"$maestro" verify nfs/nat --pcap out/demo.pcapng --out-dir out/counterexamples \
    --json out/verify-nat.json
# The generated shared-nothing firewall itself on 2 cores.
"$maestro" run nfs/fw --pcap out/demo.pcapng --strategy sn --cores 2 --out out/demo-fw.pcapng
