//! The report of a sweep folder, from its `results.csv` (so it can be redrawn without
//! measuring again): `summary.md` (median Mpps end to end and NF-only, spread of the
//! repetitions, speed-up over 1 core and over `seq`) and one SVG per (NF, frame size,
//! churn, skew) with Mpps against cores, one line per strategy, `seq` as the 1-core
//! reference; where the CSV has the binaries' `nf_seconds`, a second SVG per group with
//! the NF-only Mpps (`<stem>-nf.svg`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use maestro_runtime::exec::Strategy;

use crate::baselines::PUBLISHED;
use plotters::style::RGBColor;

use crate::csv::{read_rows, Row, Status};
use crate::machine::MachineInfo;
use crate::plot::{render, Chart, HLine, Series, SeriesPoint, Stroke};
use crate::LabError;

/// How to draw the report.
#[derive(Clone, Debug, Default)]
pub struct ReportOptions {
    /// Also draw the published figures of [`PUBLISHED`] on 64-byte plots (labeled as
    /// published figures on other hardware, with their sources).
    pub baselines: bool,
}

/// What the report wrote.
#[derive(Clone, Debug)]
pub struct Report {
    pub summary: PathBuf,
    /// End-to-end Mpps, one per (NF, size, churn, skew).
    pub plots: Vec<PathBuf>,
    /// NF-only Mpps, for the groups whose rows have `nf_seconds`.
    pub nf_plots: Vec<PathBuf>,
}

/// Which throughput a table column or plot shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Packets over the binary's whole engine time (`mpps`): dispatch, NF, collection.
    EndToEnd,
    /// Packets over the workers' time alone ([`Row::nf_mpps`]).
    NfOnly,
}

/// The statistics of one (strategy, cores) cell over its repetitions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cell {
    /// Mpps of the successful runs.
    pub mpps: Vec<f64>,
    /// NF-only Mpps of the successful runs that have `nf_seconds`.
    pub nf_mpps: Vec<f64>,
    pub spreads: Vec<f64>,
    pub runs: usize,
}

impl Cell {
    pub fn values(&self, metric: Metric) -> &[f64] {
        match metric {
            Metric::EndToEnd => &self.mpps,
            Metric::NfOnly => &self.nf_mpps,
        }
    }
    pub fn median(&self) -> Option<f64> {
        median(&self.mpps)
    }
    pub fn min(&self) -> Option<f64> {
        self.mpps.iter().copied().reduce(f64::min)
    }
    pub fn max(&self) -> Option<f64> {
        self.mpps.iter().copied().reduce(f64::max)
    }
    pub fn median_of(&self, metric: Metric) -> Option<f64> {
        median(self.values(metric))
    }
    pub fn min_of(&self, metric: Metric) -> Option<f64> {
        self.values(metric).iter().copied().reduce(f64::min)
    }
    pub fn max_of(&self, metric: Metric) -> Option<f64> {
        self.values(metric).iter().copied().reduce(f64::max)
    }
}

/// The median (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// One plot's worth of rows: an NF under one traffic setting.
#[derive(Clone, Debug, Default)]
pub struct Group {
    pub nf: String,
    pub frame_size: String,
    pub churn_fpm: u64,
    pub zipf: f64,
    pub ingress: String,
    pub packets: u64,
    /// (strategy order, strategy, cores) -> cell.
    pub cells: BTreeMap<(usize, String, usize), Cell>,
}

impl Group {
    fn key(row: &Row) -> (String, String, u64, String) {
        (
            row.nf.clone(),
            row.frame_size.clone(),
            row.churn_fpm,
            row.zipf.to_string(),
        )
    }

    pub fn cell(&self, strategy: &str, cores: usize) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|((_, s, c), _)| s == strategy && *c == cores)
            .map(|(_, cell)| cell)
    }

    /// The file stem of the plot.
    pub fn stem(&self) -> String {
        let raw = format!(
            "{}-{}-churn{}-zipf{}",
            self.nf, self.frame_size, self.churn_fpm, self.zipf
        );
        raw.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    fn size_text(&self) -> String {
        if self.frame_size == "imix" {
            "IMIX".into()
        } else {
            format!("{} B", self.frame_size)
        }
    }
}

fn strategy_order(name: &str) -> usize {
    Strategy::ALL
        .iter()
        .position(|s| s.name() == name)
        .unwrap_or(Strategy::ALL.len())
}

/// Groups rows by (NF, size, churn, skew) in order of first appearance.
pub fn group_rows(rows: &[Row]) -> Vec<Group> {
    let mut order: Vec<(String, String, u64, String)> = Vec::new();
    let mut groups: BTreeMap<(String, String, u64, String), Group> = BTreeMap::new();
    for r in rows {
        let key = Group::key(r);
        let g = groups.entry(key.clone()).or_insert_with(|| {
            order.push(key.clone());
            Group {
                nf: r.nf.clone(),
                frame_size: r.frame_size.clone(),
                churn_fpm: r.churn_fpm,
                zipf: r.zipf,
                ingress: r.ingress.clone(),
                packets: r.packets,
                cells: BTreeMap::new(),
            }
        });
        let cell = g
            .cells
            .entry((strategy_order(&r.strategy), r.strategy.clone(), r.cores))
            .or_default();
        cell.runs += 1;
        if r.status == Status::Ok {
            if let Some(m) = r.mpps {
                cell.mpps.push(m);
            }
            if let Some(s) = r.spread {
                cell.spreads.push(s);
            }
            if let Some(m) = r.nf_mpps() {
                cell.nf_mpps.push(m);
            }
        }
    }
    order
        .into_iter()
        .filter_map(|k| groups.remove(&k))
        .collect()
}

fn color(strategy: &str) -> RGBColor {
    match strategy {
        "seq" => RGBColor(0, 0, 0),
        "sn" => RGBColor(0x1f, 0x77, 0xb4),
        "locks" => RGBColor(0xff, 0x7f, 0x0e),
        "tm" => RGBColor(0x2c, 0xa0, 0x2c),
        _ => RGBColor(0x94, 0x67, 0xbd),
    }
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_string(), |x| format!("{x:.digits$}"))
}

/// The chart of one group.
pub fn chart(
    group: &Group,
    machine: Option<&MachineInfo>,
    opts: &ReportOptions,
    metric: Metric,
) -> Chart {
    let mut x_ticks: Vec<f64> = group.cells.keys().map(|(_, _, c)| *c as f64).collect();
    x_ticks.sort_by(f64::total_cmp);
    x_ticks.dedup();
    let reps = group.cells.values().map(|c| c.runs).max().unwrap_or(0);
    let seq = group.cell("seq", 1).and_then(|c| c.median_of(metric));
    let mut series: Vec<Series> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for (_, s, _) in group.cells.keys() {
        if s != "seq" && !names.contains(&s.as_str()) {
            names.push(s);
        }
    }
    for name in names {
        let points: Vec<SeriesPoint> = group
            .cells
            .iter()
            .filter(|((_, s, _), _)| s == name)
            .filter_map(|((_, _, c), cell)| {
                Some(SeriesPoint {
                    x: *c as f64,
                    y: cell.median_of(metric)?,
                    lo: cell.min_of(metric)?,
                    hi: cell.max_of(metric)?,
                })
            })
            .collect();
        series.push(Series {
            name: name.to_string(),
            color: color(name),
            stroke: Stroke::Solid,
            whiskers: true,
            points,
        });
    }
    let mut hlines = Vec::new();
    let mut notes = Vec::new();
    if let Some(seq) = seq {
        hlines.push(HLine {
            name: format!("seq, 1 core (reference): {seq:.2} Mpps"),
            y: seq,
            color: color("seq"),
            stroke: Stroke::Dash(7, 4),
        });
        if x_ticks.len() > 1 {
            series.push(Series {
                name: "ideal: seq × cores".into(),
                color: RGBColor(0xaa, 0xaa, 0xaa),
                stroke: Stroke::Dash(2, 3),
                whiskers: false,
                points: x_ticks
                    .iter()
                    .map(|&x| SeriesPoint {
                        x,
                        y: seq * x,
                        lo: seq * x,
                        hi: seq * x,
                    })
                    .collect(),
            });
        }
    }
    // Published figures are end-to-end throughputs of whole systems.
    if opts.baselines && group.frame_size == "64" && metric == Metric::EndToEnd {
        let top = x_ticks.last().copied().unwrap_or(1.0);
        for (i, p) in PUBLISHED.iter().enumerate() {
            let points: Vec<SeriesPoint> = p
                .points
                .iter()
                .filter(|(c, _)| *c as f64 <= top)
                .map(|&(c, m)| SeriesPoint {
                    x: c as f64,
                    y: m,
                    lo: m,
                    hi: m,
                })
                .collect();
            if points.is_empty() {
                continue;
            }
            series.push(Series {
                name: p.label.to_string(),
                color: if i == 0 {
                    RGBColor(0x8c, 0x56, 0x4b)
                } else {
                    RGBColor(0x7f, 0x7f, 0x7f)
                },
                stroke: Stroke::Dash(8, 4),
                whiskers: false,
                points,
            });
            notes.push(format!(
                "Published figure, not measured here: {}.",
                p.source
            ));
        }
    }
    if let Some(m) = machine {
        notes.insert(
            0,
            format!(
                "Measured on {} ({}), {} to {}, load average {:.1} at the start, {:.1} at the end; commit {}.",
                m.hostname,
                m.one_line(),
                m.started,
                m.finished,
                m.load_start[0],
                m.load_end[0],
                m.git_commit.as_deref().unwrap_or("unknown")
            ),
        );
    }
    if metric == Metric::NfOnly {
        notes.insert(
            0,
            "NF-only: packets over the workers' time (the binary's nf_seconds), without the \
             serial software RSS dispatch and the in-order collection of results."
                .to_string(),
        );
    }
    Chart {
        title: format!(
            "{}: {}, churn {} flows/min, Zipf {}{}",
            group.nf,
            group.size_text(),
            group.churn_fpm,
            group.zipf,
            match metric {
                Metric::EndToEnd => "",
                Metric::NfOnly => " (NF only)",
            }
        ),
        subtitle: format!(
            "Generated binary, synthetic trace of {} packets, flows from {}; median of {} run{} per point, whiskers min to max",
            group.packets,
            group.ingress,
            reps,
            if reps == 1 { "" } else { "s" }
        ),
        x_label: "cores".into(),
        y_label: match metric {
            Metric::EndToEnd => "throughput (Mpps)",
            Metric::NfOnly => "NF-only throughput (Mpps)",
        }
        .into(),
        x_ticks,
        series,
        hlines,
        notes,
    }
}

/// Reads `dir/results.csv` (and `machine.json`, `sweep.json` where present) and writes
/// `summary.md` and `plots/*.svg`.
pub fn write_report(dir: &Path, opts: &ReportOptions) -> Result<Report, LabError> {
    let rows = read_rows(&dir.join("results.csv"))?;
    let machine: Option<MachineInfo> = std::fs::read_to_string(dir.join("machine.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let sweep: Option<serde_json::Value> = std::fs::read_to_string(dir.join("sweep.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let strings = |key: &str| -> Vec<String> {
        sweep
            .as_ref()
            .and_then(|s| s.get(key))
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let groups = group_rows(&rows);
    let plot_dir = dir.join("plots");
    std::fs::create_dir_all(&plot_dir).map_err(LabError::io(&plot_dir))?;
    // Plots of an earlier sweep into this folder would pass for this one's.
    if let Ok(entries) = std::fs::read_dir(&plot_dir) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "svg") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let mut plots = Vec::new();
    let mut nf_plots = Vec::new();
    let mut md = String::new();
    let _ = writeln!(md, "# Sweep summary\n");
    if let Some(m) = &machine {
        let _ = writeln!(
            md,
            "- Machine: {} (`{}`), {} to {}.\n- Load average (1/5/15 min): {:.2} {:.2} {:.2} at the start, {:.2} {:.2} {:.2} at the end; each run's own 1-minute load is in `results.csv`.\n- Commit: {}; runtime digest {}.",
            m.one_line(),
            m.hostname,
            m.started,
            m.finished,
            m.load_start[0],
            m.load_start[1],
            m.load_start[2],
            m.load_end[0],
            m.load_end[1],
            m.load_end[2],
            m.git_commit.as_deref().unwrap_or("unknown"),
            m.runtime_digest
        );
    }
    let ok = rows.iter().filter(|r| r.status == Status::Ok).count();
    let _ = writeln!(
        md,
        "- Runs: {} ({} ok, {} failed, {} timed out).",
        rows.len(),
        ok,
        rows.iter().filter(|r| r.status == Status::Failed).count(),
        rows.iter().filter(|r| r.status == Status::Timeout).count()
    );
    let _ = writeln!(
        md,
        "- Mpps is packets over the engine's processing time as the binary measures it \
         (capture reading excluded; the software RSS dispatch and the in-order collection of \
         results included, both serial); the median is over the successful repetitions; \
         \"× 1 core\" divides by the same strategy's 1-core median, \"× seq\" by the \
         sequential binary's; spread is the median over repetitions of max/mean packets \
         per core (1.00 = even)."
    );
    let ok_rows: Vec<&Row> = rows.iter().filter(|r| r.status == Status::Ok).collect();
    let with_nf = ok_rows.iter().filter(|r| r.nf_mpps().is_some()).count();
    if with_nf == 0 && !ok_rows.is_empty() {
        let _ = writeln!(
            md,
            "- NF-only Mpps: not available: this results.csv has no `nf_seconds` (it was \
             written before the binaries reported `dispatch_seconds`, `nf_seconds` and \
             `collect_seconds`; those columns read as absent). Re-run the sweep to get them."
        );
    } else if with_nf > 0 {
        let _ = writeln!(
            md,
            "- NF-only Mpps is packets over the binary's `nf_seconds`: the workers' processing \
             (wall time of the parallel part), without the serial dispatch and collection \
             (`dispatch_seconds`, `collect_seconds` in `results.csv`); \"NF × 1 core\" divides \
             by the same strategy's 1-core NF-only median. {}",
            if with_nf < ok_rows.len() {
                format!(
                    "Only {with_nf} of the {} successful runs have it; the rest read as absent.",
                    ok_rows.len()
                )
            } else {
                "Plots of it: `plots/*-nf.svg`.".to_string()
            }
        );
    }
    for s in strings("skipped") {
        let _ = writeln!(md, "- Skipped: {s}");
    }
    for s in strings("notes") {
        let _ = writeln!(md, "- Note: {s}");
    }
    let draw = |path: PathBuf, c: &Chart| -> Result<PathBuf, LabError> {
        let svg = render(c).map_err(|source| LabError::Plot {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&path, svg).map_err(LabError::io(&path))?;
        Ok(path)
    };
    for g in &groups {
        let has_nf = g.cells.values().any(|c| !c.nf_mpps.is_empty());
        let path = draw(
            plot_dir.join(format!("{}.svg", g.stem())),
            &chart(g, machine.as_ref(), opts, Metric::EndToEnd),
        )?;
        if has_nf {
            nf_plots.push(draw(
                plot_dir.join(format!("{}-nf.svg", g.stem())),
                &chart(g, machine.as_ref(), opts, Metric::NfOnly),
            )?);
        }
        let _ = writeln!(
            md,
            "\n## {}: {}, churn {} flows/min, Zipf {}\n\nFlows from {}, {} packets. Plot: [`plots/{}.svg`](plots/{}.svg)\n",
            g.nf,
            g.size_text(),
            g.churn_fpm,
            g.zipf,
            g.ingress,
            g.packets,
            g.stem(),
            g.stem()
        );
        if has_nf {
            let _ = writeln!(
                md,
                "NF-only plot: [`plots/{}-nf.svg`](plots/{}-nf.svg)\n",
                g.stem(),
                g.stem()
            );
        }
        let _ = writeln!(
            md,
            "| strategy | cores | median Mpps | min | max | ok/runs | × 1 core | × seq | NF-only Mpps | NF × 1 core | spread |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        let seq = g.cell("seq", 1).and_then(Cell::median);
        let ratio = |value: Option<f64>, base: Option<f64>| match (value, base) {
            (Some(m), Some(b)) if b > 0.0 => format!("{:.2}", m / b),
            _ => "–".into(),
        };
        for ((_, s, cores), cell) in &g.cells {
            let med = cell.median();
            let one = g.cell(s, 1).and_then(Cell::median);
            let nf = cell.median_of(Metric::NfOnly);
            let nf_one = g.cell(s, 1).and_then(|c| c.median_of(Metric::NfOnly));
            let _ = writeln!(
                md,
                "| {s} | {cores} | {} | {} | {} | {}/{} | {} | {} | {} | {} | {} |",
                fmt_opt(med, 3),
                fmt_opt(cell.min(), 3),
                fmt_opt(cell.max(), 3),
                cell.mpps.len(),
                cell.runs,
                ratio(med, one),
                ratio(med, seq),
                fmt_opt(nf, 3),
                ratio(nf, nf_one),
                fmt_opt(median(&cell.spreads), 2)
            );
        }
        plots.push(path);
    }
    let failed: Vec<&Row> = rows.iter().filter(|r| r.status != Status::Ok).collect();
    if !failed.is_empty() {
        let _ = writeln!(
            md,
            "\n## Failed runs\n\n| nf | strategy | cores | size | churn | zipf | rep | status | error |\n|---|---|---:|---|---:|---:|---:|---|---|"
        );
        for r in failed {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.nf,
                r.strategy,
                r.cores,
                r.frame_size,
                r.churn_fpm,
                r.zipf,
                r.rep,
                r.status,
                r.error.replace('|', "\\|")
            );
        }
    }
    if opts.baselines {
        let _ = writeln!(md, "\n## Published figures drawn on the 64 B plots\n");
        for p in PUBLISHED {
            let _ = writeln!(md, "- {}: {}.", p.label, p.source);
        }
    }
    let summary = dir.join("summary.md");
    std::fs::write(&summary, md).map_err(LabError::io(&summary))?;
    Ok(Report {
        summary,
        plots,
        nf_plots,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(strategy: &str, cores: usize, rep: u32, mpps: Option<f64>) -> Row {
        Row {
            nf: "fw".into(),
            strategy: strategy.into(),
            cores,
            frame_size: "64".into(),
            churn_fpm: 0,
            zipf: 0.0,
            packets: 1000,
            rep,
            status: if mpps.is_some() {
                Status::Ok
            } else {
                Status::Failed
            },
            error: if mpps.is_some() { "" } else { "exit 1" }.into(),
            processing_seconds: mpps.map(|m| 1000.0 / m / 1e6),
            mpps,
            spread: mpps.map(|_| 1.0),
            packets_per_core: vec![],
            forwarded: None,
            dropped: None,
            flooded: None,
            refused: None,
            rtm: String::new(),
            load1: 0.0,
            wall_seconds: 0.1,
            ingress: "lan".into(),
            trace: "t".into(),
            started: String::new(),
            // The NF's part: 80 % of the engine's time.
            dispatch_seconds: mpps.map(|m| 1000.0 / m / 1e6 * 0.1),
            nf_seconds: mpps.map(|m| 1000.0 / m / 1e6 * 0.8),
            collect_seconds: mpps.map(|m| 1000.0 / m / 1e6 * 0.1),
        }
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn groups_cells_and_report() {
        let rows = vec![
            row("seq", 1, 1, Some(3.0)),
            row("sn", 1, 1, Some(2.0)),
            row("sn", 2, 1, Some(4.0)),
            row("seq", 1, 2, Some(5.0)),
            row("sn", 1, 2, Some(2.0)),
            row("sn", 2, 2, None),
        ];
        let groups = group_rows(&rows);
        assert_eq!(groups.len(), 1);
        let g = &groups[0];
        assert_eq!(g.cell("seq", 1).unwrap().median(), Some(4.0));
        let sn2 = g.cell("sn", 2).unwrap();
        assert_eq!((sn2.runs, sn2.mpps.len()), (2, 1));
        let c = chart(
            g,
            None,
            &ReportOptions { baselines: true },
            Metric::EndToEnd,
        );
        assert!(c.series.iter().any(|s| s.name == "sn"));
        assert!(c.hlines[0].name.starts_with("seq, 1 core"));
        // The published VPP line is labeled and limited to the plot's cores.
        let vpp = c
            .series
            .iter()
            .find(|s| s.name.contains("VPP, one stateful"))
            .unwrap();
        assert_eq!(vpp.points.len(), 2);
        assert!(c.notes.iter().any(|n| n.contains("not measured here")));
        // NF-only: the same lines at 1/0.8 of the Mpps, no published figures.
        let nf = chart(g, None, &ReportOptions { baselines: true }, Metric::NfOnly);
        let sn = nf.series.iter().find(|s| s.name == "sn").unwrap();
        assert_eq!(sn.points.len(), 2);
        assert!((sn.points[1].y - 5.0).abs() < 1e-9, "{:?}", sn.points);
        assert!(nf.hlines[0].name.contains("5.00 Mpps"), "{:?}", nf.hlines);
        assert!(!nf.series.iter().any(|s| s.name.contains("published")));
        assert!(nf.title.ends_with("(NF only)"));

        let dir = tempfile::tempdir().unwrap();
        let mut w = crate::csv::CsvWriter::create(&dir.path().join("results.csv")).unwrap();
        for r in &rows {
            w.append(r).unwrap();
        }
        let rep = write_report(dir.path(), &ReportOptions::default()).unwrap();
        let md = std::fs::read_to_string(&rep.summary).unwrap();
        assert!(
            md.contains(
                "| sn | 2 | 4.000 | 4.000 | 4.000 | 1/2 | 2.00 | 1.00 | 5.000 | 2.00 | 1.00 |"
            ),
            "{md}"
        );
        assert!(md.contains("## Failed runs") && md.contains("exit 1"));
        assert!(!md.contains("published"), "no baselines unless asked");
        assert!(md.contains("NF-only Mpps is packets over"), "{md}");
        assert_eq!(rep.plots.len(), 1);
        assert_eq!(rep.nf_plots.len(), 1);
        assert!(rep.nf_plots[0].ends_with("plots/fw-64-churn0-zipf0-nf.svg"));
        let svg = std::fs::read_to_string(&rep.nf_plots[0]).unwrap();
        roxmltree::Document::parse(&svg).unwrap();
        assert!(svg.contains("NF-only throughput (Mpps)"));

        // Without the phase columns (an old file): no NF-only numbers or plots, and the
        // summary says why.
        let old = tempfile::tempdir().unwrap();
        let mut w = crate::csv::CsvWriter::create(&old.path().join("results.csv")).unwrap();
        for r in &rows {
            w.append(&Row {
                dispatch_seconds: None,
                nf_seconds: None,
                collect_seconds: None,
                ..r.clone()
            })
            .unwrap();
        }
        let rep = write_report(old.path(), &ReportOptions::default()).unwrap();
        let md = std::fs::read_to_string(&rep.summary).unwrap();
        assert!(
            md.contains("| sn | 2 | 4.000 | 4.000 | 4.000 | 1/2 | 2.00 | 1.00 | – | – | 1.00 |"),
            "{md}"
        );
        assert!(md.contains("NF-only Mpps: not available"), "{md}");
        assert!(rep.nf_plots.is_empty());
    }
}
