//! The billing page's chart of events per day: inline SVG written on the server — no chart
//! library, no script, nothing fetched from elsewhere — with the figures in a table beside it
//! for screen readers.

use chrono::NaiveDate;
use maud::{Markup, html};

/// The drawing's size in SVG units; it scales to the card's width.
const WIDTH: u32 = 620;
const HEIGHT: u32 = 180;
/// Room for the axis labels.
const LEFT: u32 = 48;
const BOTTOM: u32 = 24;
const TOP: u32 = 8;

/// One bar: where it stands and how tall it is, in SVG units.
#[derive(Debug, PartialEq)]
struct Bar {
    date: NaiveDate,
    events: u64,
    x: u32,
    width: u32,
    height: u32,
}

/// The bars of `days`, scaled so that the busiest day fills the height. A day with any events
/// is at least one unit tall, so that a quiet day beside a busy one is still seen.
fn bars(days: &[(NaiveDate, u64)]) -> Vec<Bar> {
    let plot_height = HEIGHT - BOTTOM - TOP;
    let slot = (WIDTH - LEFT) / u32::try_from(days.len().max(1)).unwrap_or(u32::MAX);
    let busiest = days.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    days.iter()
        .zip(0u32..)
        .map(|(&(date, events), i)| {
            let scaled = u128::from(events) * u128::from(plot_height) / u128::from(busiest);
            let height = u32::try_from(scaled).unwrap_or(plot_height);
            Bar {
                date,
                events,
                x: LEFT + i * slot + 1,
                width: slot.saturating_sub(2).max(1),
                height: if events > 0 { height.max(1) } else { 0 },
            }
        })
        .collect()
}

/// The chart of `days` (every day of the month, in order), `today` drawn apart.
pub(crate) fn daily_chart(days: &[(NaiveDate, u64)], today: NaiveDate) -> Markup {
    let bars = bars(days);
    let total: u64 = days.iter().map(|(_, n)| n).sum();
    let busiest = days.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let today_events = days
        .iter()
        .find(|(d, _)| *d == today)
        .map_or(0, |(_, n)| *n);
    let base = HEIGHT - BOTTOM;
    let month = days.first().map(|(d, _)| d.format("%B %Y").to_string());
    let label = format!(
        "Events per day in {}: {} in all, {} today",
        month.as_deref().unwrap_or("this month"),
        super::format::thousands(total),
        super::format::thousands(today_events)
    );
    html! {
        figure.chart {
            svg id="daily-chart" viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(label) {
                line.axis x1=(LEFT) y1=(base) x2=(WIDTH) y2=(base) {}
                text.tick x=(LEFT - 6) y=(TOP + 10) text-anchor="end" { (super::format::thousands(busiest)) }
                text.tick x=(LEFT - 6) y=(base) text-anchor="end" { "0" }
                @for bar in &bars {
                    rect class=(if bar.date == today { "bar today" } else { "bar" })
                        data-date=(bar.date) data-events=(bar.events)
                        x=(bar.x) y=(base - bar.height) width=(bar.width) height=(bar.height) {
                        title { (bar.date.format("%b %-d")) ": " (super::format::thousands(bar.events)) " events" }
                    }
                    @if bar.date.format("%d").to_string().parse::<u32>().is_ok_and(|d| d == 1 || d % 5 == 0) {
                        text.tick x=(bar.x + bar.width / 2) y=(HEIGHT - 6) text-anchor="middle" { (bar.date.format("%-d")) }
                    }
                }
            }
            figcaption { (label) "." }
            table.visually-hidden {
                thead { tr { th { "Day" } th { "Events" } } }
                tbody {
                    @for (date, events) in days {
                        tr { td { (date) } td { (events) } }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn november(events: &[(u32, u64)]) -> Vec<(NaiveDate, u64)> {
        (1..=30)
            .map(|d| {
                let n = events
                    .iter()
                    .find(|(day, _)| *day == d)
                    .map_or(0, |(_, n)| *n);
                (NaiveDate::from_ymd_opt(2026, 11, d).unwrap(), n)
            })
            .collect()
    }

    #[test]
    fn the_busiest_day_fills_the_height_and_a_quiet_one_still_shows() {
        let bars = bars(&november(&[(3, 1), (27, 50_000), (28, 25_000)]));
        let full = HEIGHT - BOTTOM - TOP;
        assert_eq!(bars.len(), 30);
        assert_eq!(bars[26].height, full);
        assert_eq!(bars[27].height, full / 2);
        assert_eq!(bars[2].height, 1, "one event beside 50,000 is still drawn");
        assert_eq!(bars[0].height, 0);
        // Bars stand side by side, left to right, inside the drawing.
        assert!(bars.windows(2).all(|w| w[0].x + w[0].width < w[1].x));
        assert!(bars.last().map(|b| b.x + b.width).unwrap() <= WIDTH);
    }

    #[test]
    fn the_chart_marks_today_and_says_its_figures_in_words() {
        let days = november(&[(27, 3)]);
        let today = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        let html = daily_chart(&days, today).into_string();
        assert!(
            html.contains(r#"class="bar today" data-date="2026-11-27" data-events="3""#),
            "{html}"
        );
        assert!(html.contains("Events per day in November 2026: 3 in all, 3 today"));
        assert_eq!(html.matches("<rect").count(), 30);
        assert!(!html.contains("<script"), "no script, no library");
    }
}
