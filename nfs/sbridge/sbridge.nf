nf sbridge "Static bridge: forwards by a fixed (destination MAC, input port) table";

// Maestro's sbridge (nf-semantics.md §3.3). The table is read-only after start-up, so
// the NF has no sharding constraints. Rule values: a port number forwards there, -1
// floods, -2 drops ("filter"); a rule whose port is the input port drops (libVig).
device p0 = 0;
device p1 = 1;

// One rule per line: destination MAC, input port, output port (see rules.txt).
config rules: file = "rules.txt";

record StaticKey { mac: mac, port: device }

state table: map<StaticKey, i64>(capacity: 8192, init: rules);

process {
    if let out = table.get(StaticKey { mac: pkt.eth.dst, port: in }) {
        if out == -1 {
            flood;
        }
        if out == -2 {
            drop;
        }
        forward(out as device);
    } else {
        flood;
    }
}
