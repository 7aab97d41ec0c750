nf cl "Connection limiter: caps the number of distinct flows per (source, destination) client on WAN-to-LAN traffic";

// nf-semantics.md §3.9 (Maestro defaults). A count-min sketch with per-row cells (Q10:
// the intended semantics, not the C code's shared map) counts new flows per client. A
// new flow is recorded before the limit check, so a refused flow's later packets pass
// (Q9, kept for equivalence with Maestro).
device lan = 1;
device wan = 0;

config max_flows: u32 = 65536;
config capacity: u32 = 1024;            // sketch width
config max_clients: u32 = 64;           // the limit θ
config expire_flow: u64 = 100s;
config expire_client: u64 = 100s;

record Flow { src_port: u16, dst_port: u16, src_ip: ip4, dst_ip: ip4, proto: u8 }
record Client { src_ip: ip4, dst_ip: ip4 }

state flows: table<Flow>(capacity: max_flows, ttl: expire_flow);
state clients: sketch<Client>(width: capacity, ttl: expire_client, threshold: max_clients);

process {
    parse l4 else {
        drop;
    }
    flows.expire();
    clients.expire();
    if in == lan {
        forward(wan);
    }
    if in != wan {
        drop;
    }
    let flow = Flow { src_port: pkt.l4.sport, dst_port: pkt.l4.dport,
                      src_ip: pkt.ip.src, dst_ip: pkt.ip.dst, proto: pkt.ip.proto };
    let client = Client { src_ip: pkt.ip.src, dst_ip: pkt.ip.dst };
    if let i = flows.get(flow) {
        flows.refresh(i);
        clients.refresh(client);
        forward(lan);
    }
    if let i = flows.add(flow) {
        if clients.over(client) {
            drop;                    // the flow stays recorded (Q9)
        }
        clients.touch(client);
        forward(lan);
    } else {
        forward(lan);                // flow table full: forwarded without limiting
    }
}
