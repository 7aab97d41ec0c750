nf fw "Stateful firewall: LAN opens flows, WAN may only answer";

device lan = 0;
device wan = 1;

config expiration_time: u64 = 100s;      // durations are nanoseconds
config max_flows: u32 = 65536;
config lan_mac: mac = 02:00:00:00:00:00; // our MAC on the LAN port
config wan_mac: mac = 02:00:00:00:00:01;
config lan_peer: mac = 01:23:45:67:89:00; // next hop on the LAN side
config wan_peer: mac = 01:23:45:67:89:01;

record FlowId { src_port: u16, dst_port: u16, src_ip: ip4, dst_ip: ip4, proto: u8 }

state flows: table<FlowId, device>(capacity: max_flows, ttl: expiration_time);

process {
    flows.expire();
    parse l4 else { drop; }
    if in == wan {
        let key = FlowId { src_port: pkt.l4.dport, dst_port: pkt.l4.sport,
                           src_ip: pkt.ip.dst, dst_ip: pkt.ip.src, proto: pkt.ip.proto };
        if let i = flows.get(key) {
            flows.refresh(i);
            let out = flows.value(i);
            pkt.eth.src = lan_mac;
            pkt.eth.dst = lan_peer;
            forward(out);
        } else {
            drop;
        }
    }
    let key = FlowId { src_port: pkt.l4.sport, dst_port: pkt.l4.dport,
                       src_ip: pkt.ip.src, dst_ip: pkt.ip.dst, proto: pkt.ip.proto };
    if let i = flows.get(key) {
        flows.refresh(i);
    } else {
        flows.add(key, in);
    }
    pkt.eth.src = wan_mac;
    pkt.eth.dst = wan_peer;
    forward(wan);
}
