nf lb "Load balancer (VigLB, Maglev-like): WAN clients are spread over backends that announce themselves by heartbeats";

// nf-semantics.md §3.8 (Maestro variant, two ports). Every TCP/UDP packet from the
// backend side is a heartbeat: it registers or refreshes the backend (by source IP) and
// is consumed. Client traffic from WAN is pinned per flow to a backend chosen by the
// consistent-hash table. A flow is bound to a backend index (Q8, kept): if that index is
// reused by a new backend, the flow follows it. The return path bypasses the balancer.
device lan = 0;    // the backend side
device wan = 1;

config flow_expiration: u64 = 100s;
config flow_capacity: u32 = 65536;
config backend_capacity: u32 = 32;
config cht_height: u32 = 97;
config backend_expiration: u64 = 100s;
config lan_mac: mac = 02:00:00:00:00:00;    // our address on each port
config wan_mac: mac = 02:00:00:00:00:01;

record Flow { src_ip: ip4, dst_ip: ip4, src_port: u16, dst_port: u16, proto: u8 }
record Backend { nic: device, mac: mac, ip: ip4 }

state flows: table<Flow, u32>(capacity: flow_capacity, ttl: flow_expiration);
state backends: table<ip4, Backend>(capacity: backend_capacity, ttl: backend_expiration);
state ring: cht(height: cht_height, backends: backends);

process {
    flows.expire();
    backends.expire();
    parse l4 else {
        drop;
    }
    if in != wan {
        // Heartbeat. A known backend keeps its first MAC and port until it expires.
        if let b = backends.get(pkt.ip.src) {
            backends.refresh(b);
        } else {
            backends.add(pkt.ip.src, Backend { nic: in, mac: pkt.eth.src, ip: pkt.ip.src });
        }
        drop;
    }
    let flow = Flow { src_ip: pkt.ip.src, dst_ip: pkt.ip.dst, src_port: pkt.l4.sport,
                      dst_port: pkt.l4.dport, proto: pkt.ip.proto };
    let mut backend: u32 = 0;
    let mut pinned = false;
    if let f = flows.get(flow) {
        let b = flows.value(f);
        if backends.has_index(b) {
            flows.refresh(f);
            backend = b;
            pinned = true;
        } else {
            flows.remove(flow);      // its backend died: re-resolve below
        }
    }
    if !pinned {
        if let b = ring.find(hash(flow) as u64) {
            flows.add(flow, b);      // a full flow table still forwards, unpinned
            backend = b;
        } else {
            drop;                    // no live backend
        }
    }
    let target = backends.value(backend);
    let mut own_mac = lan_mac;
    if target.nic == wan {
        own_mac = wan_mac;
    }
    pkt.ip.dst = target.ip;
    pkt.eth.src = own_mac;
    pkt.eth.dst = target.mac;
    forward(target.nic);
}
