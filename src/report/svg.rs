//! Charts drawn as inline SVG by hand: stacked bars over time, horizontal bars, and lines
//! against a limit. Numbers are written with fixed precision and nothing depends on the
//! clock or on hash order, so the same report gives the same bytes.

use std::fmt::Write;

/// Width and height of every chart, in pixels.
pub const WIDTH: f64 = 760.0;
/// See [`WIDTH`].
pub const HEIGHT: f64 = 270.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 52.0;
const BOTTOM: f64 = 44.0;

/// Colours of the decisions, in `DecisionKind` order (allow, deny, throttle, approval,
/// unknown). The HTML test looks for them in a screenshot.
pub const DECISION_COLOURS: [&str; 5] = ["#2e9e5b", "#d64541", "#f28c28", "#3478c6", "#8e8e8e"];
/// The colour of lines and single-series bars.
pub const LINE: &str = "#3478c6";
/// The colour of limits and targets.
pub const LIMIT: &str = "#d64541";

/// One series: a name for the legend, a colour, and values.
pub struct Series<'a, T> {
    /// Legend text.
    pub name: &'a str,
    /// Fill or stroke colour.
    pub colour: &'a str,
    /// The values.
    pub values: T,
}

/// A horizontal or vertical marker line with a label.
pub struct Marker<'a> {
    /// Label drawn by the line.
    pub label: String,
    /// Position in data units.
    pub at: f64,
    /// Colour.
    pub colour: &'a str,
}

/// Escape text for XML.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The smallest 1, 2 or 5 times a power of ten at or above `x` (an axis' top).
fn nice(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&v| v >= x * (1.0 - 1e-9))
        .unwrap_or(10.0 * p)
}

/// A number for an axis label: whole when it is, else with up to two decimals.
fn label(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        let s = format!("{x:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// The frame of a chart: title, y axis from 0 to `top` with gridlines, and the legend.
fn frame(out: &mut String, title: &str, top: f64, legend: &[(&str, &str)]) {
    let shown = short(title, 96);
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{t}"><title>{t}</title><rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/><text x="{LEFT}" y="18" class="title">{s}</text>"##,
        t = escape(title),
        s = escape(&shown)
    );
    let plot_h = HEIGHT - TOP - BOTTOM;
    // Ticks at round numbers: a top of 2·10ⁿ in fourths, 1·10ⁿ and 5·10ⁿ in fifths.
    let mantissa = top / 10f64.powf(top.log10().floor());
    let ticks = if (mantissa - 2.0).abs() < 1e-9 { 4 } else { 5 };
    for i in 0..=ticks {
        let v = top * f64::from(i) / f64::from(ticks);
        let y = TOP + plot_h - plot_h * f64::from(i) / f64::from(ticks);
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{x2:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#e4e4e4"/><text x="{lx:.1}" y="{ly:.1}" class="tick" text-anchor="end">{v}</text>"##,
            x2 = WIDTH - RIGHT,
            lx = LEFT - 6.0,
            ly = y + 4.0,
            v = label(v)
        );
    }
    let mut x = LEFT;
    for (name, colour) in legend {
        let _ = write!(
            out,
            r#"<rect x="{x:.1}" y="27" width="10" height="10" fill="{colour}"/><text x="{tx:.1}" y="36" class="tick">{n}</text>"#,
            tx = x + 14.0,
            n = escape(name)
        );
        x += 7.0 * name.chars().count() as f64 + 30.0;
    }
}

/// `text` cut to `max` characters, with an ellipsis when cut.
fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    text.chars().take(max - 1).chain(['…']).collect()
}

/// x-axis labels: `labels` at their x positions.
fn x_labels(out: &mut String, labels: &[(f64, String)]) {
    let y = HEIGHT - BOTTOM + 16.0;
    for (x, text) in labels {
        // A label that would run off an edge is aligned to it instead of centred.
        let half = 3.2 * text.chars().count() as f64;
        let (x, anchor) = if x + half > WIDTH - 2.0 {
            (WIDTH - 2.0, "end")
        } else if x - half < 2.0 {
            (2.0, "start")
        } else {
            (*x, "middle")
        };
        let _ = write!(
            out,
            r#"<text x="{x:.1}" y="{y:.1}" class="tick" text-anchor="{anchor}">{t}</text>"#,
            t = escape(text)
        );
    }
}

/// The x labels worth printing of `n` evenly spaced slots: at most `max`, first and last
/// included.
fn label_slots(n: usize, max: usize) -> Vec<usize> {
    if n <= max {
        return (0..n).collect();
    }
    let every = n.div_ceil(max.max(2) - 1);
    let mut slots: Vec<usize> = (0..n).step_by(every).collect();
    if slots.last() != Some(&(n - 1)) {
        if 2 * (n - 1 - slots[slots.len() - 1]) < every {
            slots.pop();
        }
        slots.push(n - 1);
    }
    slots
}

/// Bars stacked per slot (one series per layer, bottom first), with the slots' labels.
pub fn stacked_bars(
    title: &str,
    slots: &[String],
    series: &[Series<'_, Vec<f64>>],
    horizontal: &[Marker<'_>],
) -> String {
    let n = slots.len().max(1);
    let totals: Vec<f64> = (0..n)
        .map(|i| {
            series
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let highest = (totals.iter().copied())
        .chain(horizontal.iter().map(|m| m.at * 1.05))
        .fold(0.0, f64::max);
    let top = nice(highest);
    let legend: Vec<(&str, &str)> = series.iter().map(|s| (s.name, s.colour)).collect();
    let mut out = String::new();
    frame(&mut out, title, top, &legend);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / n as f64;
    let bar = (slot * 0.8).max(1.0);
    for (i, name) in slots.iter().enumerate() {
        let mut y = TOP + plot_h;
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        for s in series {
            let v = s.values.get(i).copied().unwrap_or(0.0);
            if v <= 0.0 {
                continue;
            }
            let h = plot_h * v / top;
            y -= h;
            let _ = write!(
                out,
                r#"<rect x="{x:.2}" y="{y:.2}" width="{bar:.2}" height="{h:.2}" fill="{c}"><title>{l}: {v} {n}</title></rect>"#,
                c = s.colour,
                l = escape(name),
                v = label(v),
                n = escape(s.name)
            );
        }
    }
    markers(&mut out, horizontal, |y| TOP + plot_h - plot_h * y / top);
    let labels: Vec<(f64, String)> = label_slots(slots.len(), 6)
        .into_iter()
        .map(|i| (LEFT + slot * (i as f64 + 0.5), slots[i].clone()))
        .collect();
    x_labels(&mut out, &labels);
    out.push_str("</svg>");
    out
}

/// Dashed horizontal lines across the plot at `py(at)`, labelled at the right.
fn markers(out: &mut String, horizontal: &[Marker<'_>], py: impl Fn(f64) -> f64) {
    for m in horizontal {
        let y = py(m.at);
        let _ = write!(
            out,
            r#"<line x1="{LEFT}" x2="{x2:.1}" y1="{y:.2}" y2="{y:.2}" stroke="{c}" stroke-width="1.5" stroke-dasharray="6 4"/><text x="{x2:.1}" y="{ty:.2}" class="tick" text-anchor="end" fill="{c}">{l}</text>"#,
            x2 = WIDTH - RIGHT,
            ty = y - 4.0,
            c = m.colour,
            l = escape(&m.label)
        );
    }
}

/// One horizontal bar per row, longest first as given.
pub fn bars(title: &str, rows: &[(String, f64)], colour: &str) -> String {
    let top = nice(rows.iter().map(|r| r.1).fold(0.0, f64::max));
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{WIDTH}" height="{h:.0}" viewBox="0 0 {WIDTH} {h:.0}" role="img" aria-label="{t}"><title>{t}</title><rect width="{WIDTH}" height="{h:.0}" fill="#ffffff"/><text x="16" y="18" class="title">{t}</text>"##,
        h = bars_height(rows.len()),
        t = escape(title)
    );
    let name_w = 240.0;
    let plot_w = WIDTH - name_w - 70.0;
    for (i, (name, v)) in rows.iter().enumerate() {
        let y = TOP + 22.0 * i as f64;
        let w = (plot_w * v / top).max(1.0);
        let short: String = if name.chars().count() > 34 {
            name.chars().take(33).chain(['…']).collect()
        } else {
            name.clone()
        };
        let _ = write!(
            out,
            r#"<text x="{nx:.1}" y="{ty:.1}" class="tick" text-anchor="end">{n}</text><rect x="{name_w}" y="{y:.1}" width="{w:.2}" height="16" fill="{colour}"><title>{full}: {v}</title></rect><text x="{vx:.1}" y="{ty:.1}" class="tick">{v}</text>"#,
            nx = name_w - 8.0,
            ty = y + 12.0,
            n = escape(&short),
            full = escape(name),
            vx = name_w + w + 6.0,
            v = label(*v)
        );
    }
    out.push_str("</svg>");
    out
}

/// The height of a [`bars`] chart of `rows` rows.
pub fn bars_height(rows: usize) -> f64 {
    TOP + 22.0 * rows as f64 + 10.0
}

/// Lines through points (x, y), with horizontal markers (limits, targets) and vertical ones
/// (the current value); `x_text` writes an x label.
pub fn lines(
    title: &str,
    series: &[Series<'_, Vec<(f64, f64)>>],
    horizontal: &[Marker<'_>],
    vertical: &[Marker<'_>],
    x_text: &dyn Fn(f64) -> String,
) -> String {
    let points = || series.iter().flat_map(|s| s.values.iter());
    let (x0, x1) = points().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.0), b.max(p.0))
    });
    let (x0, x1) = if x0.is_finite() { (x0, x1) } else { (0.0, 1.0) };
    let span = if x1 > x0 { x1 - x0 } else { 1.0 };
    let y_max = (points().map(|p| p.1))
        .chain(horizontal.iter().map(|m| m.at))
        .fold(0.0, f64::max);
    let top = nice(y_max * 1.05);
    let legend: Vec<(&str, &str)> = series.iter().map(|s| (s.name, s.colour)).collect();
    let mut out = String::new();
    frame(&mut out, title, top, &legend);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let px = |x: f64| LEFT + plot_w * (x - x0) / span;
    let py = |y: f64| TOP + plot_h - plot_h * y / top;
    markers(&mut out, horizontal, py);
    for m in vertical {
        let x = px(m.at);
        let _ = write!(
            out,
            r#"<line x1="{x:.2}" x2="{x:.2}" y1="{TOP}" y2="{y2:.1}" stroke="{c}" stroke-width="1.5" stroke-dasharray="3 3"/><text x="{tx:.2}" y="{ty:.1}" class="tick" fill="{c}">{l}</text>"#,
            y2 = TOP + plot_h,
            tx = x + 4.0,
            ty = TOP + 12.0,
            c = m.colour,
            l = escape(&m.label)
        );
    }
    for s in series {
        let path: Vec<String> = (s.values.iter())
            .map(|&(x, y)| format!("{:.2},{:.2}", px(x), py(y)))
            .collect();
        let _ = write!(
            out,
            r#"<polyline points="{p}" fill="none" stroke="{c}" stroke-width="2"/>"#,
            p = path.join(" "),
            c = s.colour
        );
        for &(x, y) in &s.values {
            let _ = write!(
                out,
                r#"<circle cx="{cx:.2}" cy="{cy:.2}" r="3" fill="{c}"><title>{xl}: {yl}</title></circle>"#,
                cx = px(x),
                cy = py(y),
                c = s.colour,
                xl = escape(&x_text(x)),
                yl = label(y)
            );
        }
    }
    let xs: Vec<f64> = {
        let mut xs: Vec<f64> = points().map(|p| p.0).collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        xs
    };
    let labels: Vec<(f64, String)> = label_slots(xs.len(), 7)
        .into_iter()
        .map(|i| (px(xs[i]), x_text(xs[i])))
        .collect();
    x_labels(&mut out, &labels);
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round() {
        let rows = [
            (0.0, 1.0),
            (1.0, 1.0),
            (7.0, 10.0),
            (10.0, 10.0),
            (11.0, 20.0),
            (0.3, 0.5),
        ];
        for (x, want) in rows {
            assert_eq!(nice(x), want, "{x}");
        }
        assert_eq!(label_slots(3, 6), [0, 1, 2]);
        assert_eq!(label_slots(100, 6), [0, 20, 40, 60, 80, 99]);
    }
}
