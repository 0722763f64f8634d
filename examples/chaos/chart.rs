//! The chaos run's chart (SVG, plotters): for the run with breakers and the
//! run without, side by side, per second: A's latency p50 and p99, A's
//! fallback and error rates, and each breaker's state as bands.

use super::{Answer, Report};
use nanobreaker::State;
use plotters::prelude::*;
use std::time::Duration;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The latency axis' floor (ms): it is logarithmic.
const FLOOR_MS: f64 = 0.01;

/// Per second: (second, p50 ms, p99 ms, fallback %, error %, answered by D %).
fn per_second(r: &Report) -> Vec<(f64, f64, f64, f64, f64, f64)> {
    let secs = r.samples.iter().map(|s| s.at.as_secs()).max().unwrap_or(0);
    (0..=secs)
        .filter_map(|sec| {
            let mut took: Vec<_> = r.samples.iter().filter(|s| s.at.as_secs() == sec).collect();
            if took.is_empty() {
                return None;
            }
            let n = took.len() as f64;
            let pct = |a: Answer| 100.0 * took.iter().filter(|s| s.answer == a).count() as f64 / n;
            let (fallback, error, answered) = (pct(Answer::Fallback), pct(Answer::Error), pct(Answer::Ok));
            took.sort_by_key(|s| s.took);
            let q =
                |q: f64| took[((n * q).ceil() as usize).clamp(1, took.len()) - 1].took.as_secs_f64() * 1e3;
            Some((sec as f64 + 0.5, q(0.5), q(0.99), fallback, error, answered))
        })
        .collect()
}

fn color(s: State) -> RGBColor {
    match s {
        State::Closed => RGBColor(76, 175, 80),
        State::Open => RGBColor(229, 57, 53),
        State::HalfOpen => RGBColor(255, 167, 38),
        _ => RGBColor(189, 189, 189),
    }
}

/// The highest per-second p99 (ms) of `r`.
fn max_p99(r: &Report) -> f64 {
    per_second(r).iter().map(|p| p.2).fold(1.0, f64::max)
}

fn column(area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>, r: &Report, max_ms: f64) -> Result<()> {
    let title = if r.plan.breakers { "with breakers" } else { "without breakers" };
    let end: Duration = r.plan.phases.iter().sum();
    let x = 0.0..end.as_secs_f64();
    let rows = area.titled(title, ("sans-serif", 22))?.split_evenly((3, 1));
    let points = per_second(r);
    let phases = &r.starts[1..];

    let mut lat = ChartBuilder::on(&rows[0])
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(48)
        .caption("A latency (ms)", ("sans-serif", 15))
        .build_cartesian_2d(x.clone(), (FLOOR_MS..max_ms).log_scale())?;
    lat.configure_mesh().disable_x_mesh().y_label_formatter(&|v| format!("{v:.2}")).draw()?;
    for (name, pick, c) in [("p50", 1usize, BLUE), ("p99", 2, MAGENTA)] {
        let series = points.iter().map(|p| (p.0, if pick == 1 { p.1 } else { p.2 }.max(FLOOR_MS)));
        lat.draw_series(LineSeries::new(series, c.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c));
    }
    lat.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;
    for p in phases {
        lat.draw_series(LineSeries::new(
            [(p.as_secs_f64(), FLOOR_MS), (p.as_secs_f64(), max_ms)],
            BLACK.mix(0.4),
        ))?;
    }

    let mut ans = ChartBuilder::on(&rows[1])
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(48)
        .caption("A's answers (% of requests)", ("sans-serif", 15))
        .build_cartesian_2d(x.clone(), 0.0..100.0)?;
    ans.configure_mesh().disable_x_mesh().draw()?;
    let answered = RGBColor(67, 160, 71);
    for (name, pick, c) in
        [("from D", 5usize, answered), ("fallback", 3, RGBColor(255, 152, 0)), ("error", 4, RED)]
    {
        let series = points.iter().map(|p| (p.0, [p.3, p.4, p.5][pick - 3]));
        ans.draw_series(LineSeries::new(series, c.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c));
    }
    ans.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;

    let mut st = ChartBuilder::on(&rows[2])
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(48)
        .caption("breakers (green closed, red open, orange half-open)", ("sans-serif", 15))
        .build_cartesian_2d(x, 0.0..3.0)?;
    st.configure_mesh()
        .disable_mesh()
        .x_desc("seconds")
        .y_labels(7)
        .y_label_formatter(&|y: &f64| {
            // Ticks every 0.5: name each row at its middle.
            let row = ["C->D", "B->C", "A->B"].get(*y as usize).filter(|_| y.fract() == 0.5);
            row.copied().unwrap_or("").to_string()
        })
        .draw()?;
    // One band per run of equal states in a row, to the next change.
    for row in 0..3 {
        let mut k = 0;
        while k < r.states.len() {
            let (from, states) = r.states[k];
            let mut next = k + 1;
            while next < r.states.len() && r.states[next].1[row] == states[row] {
                next += 1;
            }
            let until = match r.states.get(next) {
                Some(n) => n.0,
                None => r.states[next - 1].0 + Duration::from_millis(50),
            };
            let y = 2.0 - row as f64;
            st.draw_series(std::iter::once(Rectangle::new(
                [(from.as_secs_f64(), y + 0.1), (until.as_secs_f64(), y + 0.9)],
                color(states[row]).filled(),
            )))?;
            k = next;
        }
    }
    Ok(())
}

/// Draws both runs to `path`.
pub fn draw(path: &str, with: &Report, without: &Report) -> Result<()> {
    let root = SVGBackend::new(path, (1600, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(800);
    // One latency scale for both, so the columns compare at a glance.
    let max_ms = max_p99(with).max(max_p99(without)) * 1.5;
    column(&left, with, max_ms)?;
    column(&right, without, max_ms)?;
    root.present()?;
    Ok(())
}
