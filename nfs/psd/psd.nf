nf psd "Port-scan detector: a WAN source may touch at most max_ports distinct destination ports while it stays active";

// nf-semantics.md §3.10 (Maestro defaults). The touched ports of a source live in a
// bounded set indexed by the source's table index and are cleared when the index is
// handed out again (Q11: the intended semantics; the C cleanup is broken). max_ports need
// not be a power of two (Q12).
device lan = 1;
device wan = 0;

config capacity: u32 = 65536;
config max_ports: u32 = 64;
config expiration_time: u64 = 100s;

state sources: table<ip4>(capacity: capacity, ttl: expiration_time);
state ports: sets<u16>(sets: capacity, per_set: max_ports);

process {
    parse l4 else {
        drop;
    }
    sources.expire();
    if in == lan {
        forward(wan);
    }
    if in != wan {
        drop;
    }
    if let i = sources.get(pkt.ip.src) {
        sources.refresh(i);          // even a packet that is then dropped keeps the source alive
        if ports.contains(i, pkt.l4.dport) {
            forward(lan);
        }
        if ports.insert(i, pkt.l4.dport) {
            forward(lan);
        }
        drop;                        // a new port beyond the limit: scan detected
    }
    if let i = sources.add(pkt.ip.src) {
        ports.clear(i);
        ports.insert(i, pkt.l4.dport);
    }
    forward(lan);                    // a full source table forwards untracked
}
