nf bridge "MAC-learning bridge (Maestro variant: learning only, no static table)";

// nf-semantics.md §3.4. Every frame learns its source MAC and is forwarded by its
// destination MAC; unknown destinations flood. A station move is not learned until the
// old entry expires (Q7, kept as in Vigor's spec).
device p0 = 0;
device p1 = 1;

config expiration_time: u64 = 100s;
config capacity: u32 = 65536;

state macs: table<mac, device>(capacity: capacity, ttl: expiration_time);

process {
    macs.expire();
    if let i = macs.get(pkt.eth.src) {
        macs.refresh(i);            // the stored port is not updated
    } else {
        macs.add(pkt.eth.src, in);  // a full table learns nothing and keeps forwarding
    }
    if let j = macs.get(pkt.eth.dst) {
        forward(macs.value(j));     // the learned port; the input port itself means drop
    } else {
        flood;
    }
}
