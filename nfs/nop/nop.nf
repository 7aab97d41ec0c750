nf nop "No-op forwarder: every non-WAN packet leaves on WAN, WAN packets leave on LAN";

// Maestro's nop: no parsing, no state, no rewrite; any EtherType, any length.
device lan = 0;
device wan = 1;

process {
    if in == wan {
        forward(lan);
    }
    forward(wan);
}
