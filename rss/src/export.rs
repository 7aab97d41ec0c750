//! Where a solved configuration can be applied: DPDK (`rte_eth_rss_conf` plus
//! `rte_eth_dev_rss_reta_update`), Linux `ethtool`, and JSON.

use std::fmt::Write;

use crate::{Field, RssConfig};

/// Serializes key bytes as plain hex (what JSON readers and `--key` expect).
pub fn ser_hex<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&maestro_runtime::rss::hex(bytes))
}

/// The configuration as pretty JSON.
pub fn json(cfg: &RssConfig) -> String {
    serde_json::to_string_pretty(cfg).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

fn ident(device: &str) -> String {
    device
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// C declarations for a DPDK application: one key and `rte_eth_rss_conf` per port and
/// the RETA every port must load (with `rte_eth_dev_rss_reta_update`, 64 entries per
/// `rte_eth_rss_reta_entry64`).
pub fn dpdk(cfg: &RssConfig) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "/* maestro rss: NF `{}` ({}), {}-byte keys, {}-entry RETA over {} cores, seed {}.\n * Every port must load the same RETA: co-located packets meet only if the buckets agree. */",
        cfg.nf, cfg.strategy, cfg.key_bytes, cfg.reta_size, cfg.cores, cfg.seed
    );
    for p in &cfg.ports {
        let id = ident(&p.device);
        let _ = writeln!(
            s,
            "\n/* port {} ({}): RETA index depends on {} */",
            p.port,
            p.device,
            p.fields
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = write!(s, "static uint8_t rss_key_{id}[{}] = {{", p.key.len());
        for (i, b) in p.key.iter().enumerate() {
            if i % 12 == 0 {
                s.push_str("\n    ");
            }
            let _ = write!(s, "0x{b:02x}, ");
        }
        s.push_str("\n};\n");
        let hf: Vec<String> = p
            .rss_types
            .iter()
            .map(|t| format!("RTE_ETH_RSS_{t}"))
            .collect();
        let _ = writeln!(
            s,
            "static struct rte_eth_rss_conf rss_conf_{id} = {{\n    .rss_key = rss_key_{id},\n    .rss_key_len = {},\n    .rss_hf = {},\n}};",
            p.key.len(),
            hf.join(" | ")
        );
    }
    table(&mut s, "reta", &cfg.reta);
    for p in &cfg.ports {
        if let Some(own) = &p.reta {
            let _ = writeln!(
                s,
                "\n/* port {} ({}) loads its own RETA instead of `reta` */",
                p.port, p.device
            );
            table(&mut s, &format!("reta_{}", ident(&p.device)), own);
        }
    }
    s
}

fn table(s: &mut String, name: &str, t: &[u16]) {
    let _ = write!(s, "\nstatic const uint16_t {name}[{}] = {{", t.len());
    for (i, q) in t.iter().enumerate() {
        if i % 16 == 0 {
            s.push_str("\n    ");
        }
        let _ = write!(s, "{q}, ");
    }
    s.push_str("\n};\n");
}

/// Whether `t` is what `ethtool -X ... equal N` loads: `t[b] = b % N`.
fn is_equal(t: &[u16], n: usize) -> bool {
    t.iter()
        .enumerate()
        .all(|(b, &q)| usize::from(q) == b % n.max(1))
}

/// `ethtool` commands; `<dev>` names are the NF's device names, to be replaced by the
/// interfaces. `equal N` fills the table with `b % N`, the RETA solved for; a balanced
/// or per-port table cannot be written with ethtool's command line (`equal`/`weight`
/// only make proportional tables), so it is printed as a comment to load through
/// `ETHTOOL_SRXFHINDIR` or the DPDK export.
pub fn ethtool(cfg: &RssConfig) -> String {
    let mut s = format!(
        "# maestro rss: NF `{}`, {}-byte keys, {}-entry RETA over {} cores, seed {}\n# the NIC's key size must be {} bytes (ethtool -x <dev> shows it)\n",
        cfg.nf, cfg.key_bytes, cfg.reta_size, cfg.cores, cfg.seed, cfg.key_bytes
    );
    for (pi, p) in cfg.ports.iter().enumerate() {
        let dev = format!("<{}>", p.device);
        let key: Vec<String> = p.key.iter().map(|b| format!("{b:02x}")).collect();
        let t = cfg.reta_of(pi);
        if is_equal(t, cfg.cores) {
            let _ = writeln!(
                s,
                "ethtool -X {dev} hkey {} equal {}",
                key.join(":"),
                cfg.cores
            );
        } else {
            let _ = writeln!(s, "ethtool -X {dev} hkey {}", key.join(":"));
            let entries: Vec<String> = t.iter().map(|q| q.to_string()).collect();
            let _ = writeln!(
                s,
                "# {dev}: this {}-entry RETA is not `equal {}`; ethtool's command line cannot load it, use ETHTOOL_SRXFHINDIR (or --format dpdk):\n# {}",
                t.len(),
                cfg.cores,
                entries.join(" ")
            );
        }
        let ports = p.fields.iter().any(|f| f.is_port());
        let l4 = if ports { "sdfn" } else { "sd" };
        let _ = writeln!(s, "ethtool -N {dev} rx-flow-hash tcp4 {l4}");
        let _ = writeln!(s, "ethtool -N {dev} rx-flow-hash udp4 {l4}");
        if p.rss_types
            .iter()
            .any(|t| t == "NONFRAG_IPV4_OTHER" || t == "FRAG_IPV4")
        {
            let _ = writeln!(s, "ethtool -N {dev} rx-flow-hash ip4 sd");
        }
    }
    s
}

impl Field {
    /// ethtool's letter for the field in `rx-flow-hash`.
    pub fn ethtool_letter(self) -> char {
        match self {
            Field::Src => 's',
            Field::Dst => 'd',
            Field::Sport => 'f',
            Field::Dport => 'n',
        }
    }
}
