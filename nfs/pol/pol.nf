nf pol "Policer: a token bucket per destination IP on WAN-to-LAN traffic";

// nf-semantics.md §3.5 (Maestro defaults from its Makefile). LAN traffic is not policed
// and touches no state. Buckets hold bytes; the refill is integer, fractional tokens are
// lost. The expiry time is (1e9 * burst) / rate in 128-bit arithmetic (Q6: Vigor's
// formula, not Maestro's integer-division-first one that gives 0 when burst < rate).
device lan = 1;
device wan = 0;

config rate: u64 = 1_000_000_000;      // bytes per second
config burst: u64 = 10_000_000_000;    // bytes
config capacity: u32 = 65536;

record Bucket { size: u64, time: u64 }

state buckets: table<ip4, Bucket>(capacity: capacity, ttl: mul_div(burst, 1_000_000_000, rate));

process {
    parse ipv4 else {
        drop;
    }
    buckets.expire();
    if in == lan {
        forward(wan);
    }
    if in != wan {
        drop;
    }
    let size = pkt.len as u64;
    if let i = buckets.get(pkt.ip.dst) {
        buckets.refresh(i);
        let bucket = buckets.value(i);
        let elapsed = now - bucket.time;
        let mut tokens = burst;
        if elapsed < mul_div(burst, 1_000_000_000, rate) {
            tokens = min(burst, sat_add(bucket.size, mul_div(elapsed, rate, 1_000_000_000)));
        }
        if tokens > size {
            buckets.set_value(i, Bucket { size: tokens - size, time: now });
            forward(lan);
        }
        // Not enough tokens: drop, but keep the refill and the new time.
        buckets.set_value(i, Bucket { size: tokens, time: now });
        drop;
    }
    if size > burst {
        drop;                        // a new flow larger than the burst creates no state
    }
    if let i = buckets.add(pkt.ip.dst, Bucket { size: burst - size, time: now }) {
        forward(lan);
    } else {
        drop;                        // table full
    }
}
