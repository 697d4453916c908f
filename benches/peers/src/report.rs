//! The results as one markdown table (every figure also as a ratio to the
//! raw-UDP floor of the same run), a JSON file, and SVG charts.

use std::fmt::Write as _;
use std::time::Duration;

use crate::stats::{Percentiles, Results};

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn cell(v: Option<f64>, floor: Option<f64>, unit: &str, higher_is_better: bool) -> String {
    match (v, floor) {
        (Some(v), Some(f)) if f > 0.0 => {
            let ratio = v / f;
            let _ = higher_is_better;
            format!("{v:.1}{unit} ({ratio:.2}×)")
        }
        (Some(v), _) => format!("{v:.1}{unit}"),
        (None, _) => "n/a".into(),
    }
}

pub fn table(results: &[Results]) -> String {
    let floor = results.iter().find(|r| r.library == "raw UDP");
    let f = |get: &dyn Fn(&Results) -> Option<f64>| floor.and_then(get);
    let p = |r: &Results, which: fn(&Percentiles) -> Duration, size512: bool| {
        let pc = if size512 { r.rtt512 } else { r.rtt64 };
        pc.map(|x| us(which(&x)))
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| library | RTT 64 B p50 | p99 | p99.9 | max | RTT 512 B p50 | p99 | p99.9 | bulk MiB/s | 1% loss MiB/s | 5% loss MiB/s | handshake |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in results {
        let mut row = format!("| {} ", r.library);
        let p50: fn(&Percentiles) -> Duration = |x| x.p50;
        let p99: fn(&Percentiles) -> Duration = |x| x.p99;
        let p999: fn(&Percentiles) -> Duration = |x| x.p999;
        let max: fn(&Percentiles) -> Duration = |x| x.max;
        for (which, size) in [
            (p50, false),
            (p99, false),
            (p999, false),
            (max, false),
            (p50, true),
            (p99, true),
            (p999, true),
        ] {
            let v = p(r, which, size);
            let fl = f(&|x: &Results| p(x, which, size));
            let _ = write!(row, "| {} ", cell(v, fl, " µs", false));
        }
        for get in [
            (|x: &Results| x.bulk_mib_s) as fn(&Results) -> Option<f64>,
            |x: &Results| x.lossy1_mib_s,
            |x: &Results| x.lossy5_mib_s,
        ] {
            let _ = write!(row, "| {} ", cell(get(r), f(&|x: &Results| get(x)), "", true));
        }
        let hs = r.handshake.map(us);
        let _ = write!(row, "| {} |", hs.map_or("n/a".into(), |h| format!("{:.0} µs", h)));
        let _ = writeln!(out, "{row}");
    }
    let notes: Vec<String> = results
        .iter()
        .flat_map(|r| r.notes.iter().map(move |n| format!("- {}: {n}", r.library)))
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(out, "\n{}", notes.join("\n"));
    }
    out
}

pub fn json(results: &[Results]) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            serde_json::json!({
                "library": r.library,
                "rtt_p50_us": r.rtt64.map(|p| us(p.p50)),
                "rtt_p99_us": r.rtt64.map(|p| us(p.p99)),
                "rtt_p999_us": r.rtt64.map(|p| us(p.p999)),
                "rtt_max_us": r.rtt64.map(|p| us(p.max)),
                "rtt512_p50_us": r.rtt512.map(|p| us(p.p50)),
                "rtt512_p99_us": r.rtt512.map(|p| us(p.p99)),
                "rtt512_p999_us": r.rtt512.map(|p| us(p.p999)),
                "bulk_mib_s": r.bulk_mib_s,
                "bulk_checksum_ok": r.bulk_checksum_ok,
                "lossy1_mib_s": r.lossy1_mib_s,
                "lossy5_mib_s": r.lossy5_mib_s,
                "handshake_us": r.handshake.map(us),
                "mode": r.mode,
                "notes": r.notes,
            })
        })
        .collect();
    serde_json::Value::Array(rows)
}

/// A horizontal bar chart, as SVG text.
pub fn bars(title: &str, unit: &str, rows: &[(String, f64)]) -> String {
    let max = rows.iter().map(|r| r.1).fold(0.0, f64::max).max(1e-9);
    let h = 30 * rows.len() + 50;
    let mut s = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='760' height='{h}' font-family='sans-serif' font-size='13'>\
         <text x='10' y='22' font-size='15' font-weight='bold'>{title}</text>"
    );
    for (i, (name, v)) in rows.iter().enumerate() {
        let y = 40 + i * 30;
        let w = (v / max * 420.0).max(1.0);
        let color = if name.starts_with("octolink") {
            "#2b7bb9"
        } else {
            "#999"
        };
        let _ = write!(
            s,
            "<text x='10' y='{}'>{name}</text><rect x='220' y='{}' width='{w:.1}' height='20' fill='{color}'/>\
             <text x='{:.1}' y='{}'>{v:.1} {unit}</text>",
            y + 15,
            y,
            225.0 + w,
            y + 15
        );
    }
    s.push_str("</svg>\n");
    s
}
