//! SVG plots: one panel per throughput scenario (msgs/s by payload size, one
//! line per client, log scales) and one per latency scenario and payload size
//! (latency at p50/p90/p99/p99.9/max, one line per client).

use crate::report::{human_size, latency_scenario, Report};
use plotters::prelude::*;

const PALETTE: [RGBColor; 8] = [
    RGBColor(214, 39, 40),  // courier: red, first
    RGBColor(31, 119, 180), // blue
    RGBColor(44, 160, 44),  // green
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(127, 127, 127),
];

/// Colours of scenario variants ("courier snappy"), apart from the clients'.
const VARIANT_PALETTE: [RGBColor; 4] = [
    RGBColor(227, 119, 194), // pink
    RGBColor(0, 0, 0),       // black
    RGBColor(0, 128, 128),   // teal
    RGBColor(128, 0, 0),     // maroon
];

enum Panel {
    Throughput {
        protocol: String,
        scenario: String,
    },
    Latency {
        protocol: String,
        scenario: String,
        size: usize,
    },
}

/// Draws every panel of `report` into one SVG document and returns it.
pub fn render_svg(report: &Report) -> Result<String, String> {
    let mut clients = report.clients();
    // courier first so it always gets the same colour.
    clients.sort_by_key(|c| c != crate::report::COURIER);
    let mut panels = Vec::new();
    for (protocol, scenario) in report.scenarios() {
        if latency_scenario(&scenario) {
            let mut sizes: Vec<usize> = report
                .results
                .iter()
                .filter(|m| m.protocol == protocol && m.scenario == scenario)
                .map(|m| m.payload_bytes)
                .collect();
            sizes.sort_unstable();
            sizes.dedup();
            for size in sizes {
                panels.push(Panel::Latency {
                    protocol: protocol.clone(),
                    scenario: scenario.clone(),
                    size,
                });
            }
        } else {
            // "mpub snappy" joins "mpub": variants are series of one panel.
            let base = base_scenario(&scenario).to_string();
            let seen = panels.iter().any(|p| {
                matches!(p, Panel::Throughput { protocol: pr, scenario: sc } if *pr == protocol && *sc == base)
            });
            if !seen {
                panels.push(Panel::Throughput {
                    protocol,
                    scenario: base,
                });
            }
        }
    }
    if panels.is_empty() {
        return Err("the report has no results to plot".into());
    }
    let columns = 2usize;
    let rows = panels.len().div_ceil(columns);
    let (width, height) = (1400u32, 420 * rows as u32);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let areas = root.split_evenly((rows, columns));
        for (panel, area) in panels.iter().zip(areas.iter()) {
            match panel {
                Panel::Throughput { protocol, scenario } => {
                    draw_throughput(report, &clients, protocol, scenario, area)?
                }
                Panel::Latency {
                    protocol,
                    scenario,
                    size,
                } => draw_latency(report, &clients, protocol, scenario, *size, area)?,
            }
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Compression variants share their scenario's panel: "mpub snappy" is
/// drawn as the series "courier snappy" in the "mpub" panel.
fn base_scenario(scenario: &str) -> &str {
    for variant in [" snappy", " deflate"] {
        if let Some(base) = scenario.strip_suffix(variant) {
            return base;
        }
    }
    scenario
}

/// Widens `[min, max]` to whole powers of ten so a log axis always shows
/// at least two labelled decades.
fn decades(min: f64, max: f64) -> (f64, f64) {
    let low = 10f64.powf(min.max(1e-3).log10().floor());
    let mut high = 10f64.powf(max.max(1e-3).log10().ceil());
    if high <= low {
        high = low * 10.0;
    }
    (low, high)
}

fn color_of(clients: &[String], client: &str) -> RGBColor {
    let i = clients.iter().position(|c| c == client).unwrap_or(0);
    PALETTE[i % PALETTE.len()]
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn draw_throughput(
    report: &Report,
    clients: &[String],
    protocol: &str,
    scenario: &str,
    area: &Area<'_>,
) -> Result<(), String> {
    let points: Vec<_> = report
        .results
        .iter()
        .filter(|m| {
            m.protocol == protocol
                && base_scenario(&m.scenario) == scenario
                && m.error.is_none()
                && m.msgs_per_s > 0.0
        })
        .collect();
    // Series: each client, plus "client variant" for scenario variants
    // (e.g. "courier snappy" in the mpub panel), in first-seen order.
    let mut series_keys: Vec<(String, String)> = Vec::new();
    for client in clients {
        for m in points.iter().filter(|m| &m.client == client) {
            let variant = m.scenario[scenario.len()..].trim().to_string();
            if !series_keys.contains(&(client.clone(), variant.clone())) {
                series_keys.push((client.clone(), variant));
            }
        }
    }
    let min_size = points
        .iter()
        .map(|m| m.payload_bytes)
        .min()
        .unwrap_or(1)
        .max(1) as f64;
    let max_size = points
        .iter()
        .map(|m| m.payload_bytes)
        .max()
        .unwrap_or(2)
        .max(2) as f64;
    let min_rate = points
        .iter()
        .map(|m| m.msgs_per_s)
        .fold(f64::INFINITY, f64::min);
    let max_rate = points.iter().map(|m| m.msgs_per_s).fold(0.0, f64::max);
    let (min_rate, max_rate) = if points.is_empty() {
        (1.0, 10.0)
    } else {
        decades(min_rate, max_rate)
    };
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{protocol} {scenario}: messages/s by payload size"),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(
            (min_size / 1.5..max_size * 1.5).log_scale(),
            (min_rate..max_rate).log_scale(),
        )
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .max_light_lines(1)
        .x_desc("payload bytes")
        .y_desc("messages/s")
        .x_label_formatter(&|x| human_size(x.round() as usize))
        .y_label_formatter(&|y| crate::report::human_rate(*y))
        .draw()
        .map_err(|e| e.to_string())?;
    let mut variants_seen = 0usize;
    for (client, variant) in &series_keys {
        let mut series: Vec<(f64, f64)> = points
            .iter()
            .filter(|m| &m.client == client && m.scenario[scenario.len()..].trim() == variant)
            .map(|m| (m.payload_bytes as f64, m.msgs_per_s))
            .collect();
        if series.is_empty() {
            continue;
        }
        series.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (color, label) = if variant.is_empty() {
            (color_of(clients, client), client.clone())
        } else {
            variants_seen += 1;
            (
                VARIANT_PALETTE[(variants_seen - 1) % VARIANT_PALETTE.len()],
                format!("{client} {variant}"),
            )
        };
        chart
            .draw_series(LineSeries::new(series.clone(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                series
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn draw_latency(
    report: &Report,
    clients: &[String],
    protocol: &str,
    scenario: &str,
    size: usize,
    area: &Area<'_>,
) -> Result<(), String> {
    let points: Vec<_> = report
        .results
        .iter()
        .filter(|m| {
            m.protocol == protocol
                && m.scenario == scenario
                && m.payload_bytes == size
                && m.error.is_none()
        })
        .filter_map(|m| m.latency_us.map(|l| (m.client.clone(), l)))
        .collect();
    let min_us = points
        .iter()
        .map(|(_, l)| l.p50_us)
        .fold(f64::INFINITY, f64::min)
        .max(0.01);
    let max_us = points.iter().map(|(_, l)| l.max_us).fold(1.0, f64::max);
    let (min_us, max_us) = if points.is_empty() {
        (1.0, 10.0)
    } else {
        decades(min_us, max_us)
    };
    let labels = ["p50", "p90", "p99", "p99.9", "max"];
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "{protocol} {scenario} latency, {} payload",
                human_size(size)
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.2f64..4.2f64, (min_us..max_us).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_labels(5)
        .max_light_lines(1)
        .x_desc("percentile")
        .y_desc("microseconds")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 0.05 && (0.0..=4.0).contains(&i) {
                labels[i as usize].to_string()
            } else {
                String::new()
            }
        })
        .draw()
        .map_err(|e| e.to_string())?;
    for client in clients {
        let Some((_, latency)) = points.iter().find(|(c, _)| c == client) else {
            continue;
        };
        let series: Vec<(f64, f64)> = latency
            .points()
            .iter()
            .enumerate()
            .map(|(i, (_, v))| (i as f64, v.max(min_us)))
            .collect();
        let color = color_of(clients, client);
        chart
            .draw_series(LineSeries::new(series.clone(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(client.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                series
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(())
}
