//! The device's own added latency over a phase's measured window: Tandem's
//! `tandem_added_latency_histogram_seconds` buckets (receive burst to transmit enqueue,
//! all workers), scraped from its metrics listener as the window opens and as it closes.
//! The buckets are cumulative, so the difference is the window's distribution, without
//! the warm-up or the other phases.
//!
//! The generator's own latency includes both memif rings and the generator's and the
//! device's scheduling; this is the part the device itself adds (issue #6's "added
//! latency", DESIGN §4). Quantiles come out as bucket bounds ("p99 at most 10 µs"), the
//! honest resolution of a bucketed histogram.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The family scraped.
const FAMILY: &str = "tandem_added_latency_histogram_seconds_bucket";
/// Workers fold their histograms into what the metrics show every 100 ms: a scrape at
/// T holds the frames up to some time in (T − 100 ms, T]. Scraping 50 ms after each
/// edge centres that on the edge.
const FOLD_CENTRE: Duration = Duration::from_millis(50);

/// Cumulative bucket counts: (upper bound in seconds, count at or below it), ascending,
/// ending with `+Inf`.
#[derive(Clone, Debug, PartialEq)]
pub struct Buckets(Vec<(f64, u64)>);

impl Buckets {
    /// The buckets of the family in a Prometheus exposition text.
    pub fn parse(text: &str) -> Result<Buckets> {
        let mut v = Vec::new();
        for line in text.lines().filter(|l| l.starts_with(FAMILY)) {
            let (series, count) = line
                .rsplit_once(' ')
                .with_context(|| format!("no value in {line:?}"))?;
            let le = series
                .split_once("le=\"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .map(|(le, _)| le)
                .with_context(|| format!("no le label in {line:?}"))?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse::<f64>()
                    .with_context(|| format!("le {le:?} in {line:?}"))?
            };
            let count = count
                .parse::<f64>()
                .with_context(|| format!("count {count:?} in {line:?}"))?;
            v.push((le, count as u64));
        }
        if v.last().map(|b| b.0) != Some(f64::INFINITY) {
            bail!("no {FAMILY} series ending in +Inf (a Tandem with this family?)");
        }
        if v.windows(2).any(|w| w[0].0 >= w[1].0 || w[0].1 > w[1].1) {
            bail!("{FAMILY}: bounds not ascending or counts not cumulative");
        }
        Ok(Buckets(v))
    }

    /// What was recorded between `before` and `self` (a later scrape).
    pub fn since(&self, before: &Buckets) -> Result<Buckets> {
        if self.0.len() != before.0.len() {
            bail!("the buckets changed between scrapes");
        }
        let mut v = Vec::with_capacity(self.0.len());
        for (a, b) in self.0.iter().zip(&before.0) {
            if a.0 != b.0 || a.1 < b.1 {
                bail!("the buckets changed or went back between scrapes (a restart?)");
            }
            v.push((a.0, a.1 - b.1));
        }
        Ok(Buckets(v))
    }

    /// Values counted.
    pub fn count(&self) -> u64 {
        self.0.last().map_or(0, |b| b.1)
    }

    /// The smallest bound with at least a share `q` of the values at or below it: the
    /// `q` quantile is at most this. `None` when empty; infinite past the last bound.
    pub fn quantile_at_most(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let want = (q * n as f64).ceil() as u64;
        self.0.iter().find(|b| b.1 >= want).map(|b| b.0)
    }

    /// The share of values at or below the bound `le` (seconds; must be one of the
    /// bounds). `None` when empty or `le` is not a bound.
    pub fn share_at_most(&self, le: f64) -> Option<f64> {
        let n = self.count();
        let b = self.0.iter().find(|b| (b.0 - le).abs() <= le * 1e-9)?;
        (n > 0).then(|| b.1 as f64 / n as f64)
    }

    /// `le_seconds,count` lines (cumulative), with a header.
    pub fn csv(&self) -> String {
        let mut s = String::from("le_seconds,cumulative_count\n");
        for (le, c) in &self.0 {
            s.push_str(&format!("{le},{c}\n"));
        }
        s
    }
}

/// One GET of `/metrics` at `addr`, bounded by a 2 s timeout.
pub fn scrape(addr: SocketAddr) -> Result<Buckets> {
    let timeout = Duration::from_secs(2);
    let mut conn = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to the device's metrics at {addr}"))?;
    conn.set_read_timeout(Some(timeout))?;
    conn.set_write_timeout(Some(timeout))?;
    conn.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")?;
    let mut text = String::new();
    conn.take(16 << 20)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {addr}/metrics"))?;
    let body = match text.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.0 200") => body,
        _ => bail!("{addr}/metrics: not a 200 answer"),
    };
    Buckets::parse(body)
}

/// Scrapes around one measured window on a thread of its own, so the sending lcore does
/// not stop: `opens_in` from now and `window` later, each [`FOLD_CENTRE`] late.
pub struct WindowScrape(JoinHandle<Result<Buckets>>);

impl WindowScrape {
    /// Starts the scrapes.
    pub fn start(addr: SocketAddr, opens_in: Duration, window: Duration) -> Result<WindowScrape> {
        let open = Instant::now() + opens_in + FOLD_CENTRE;
        let close = open + window;
        let h = std::thread::Builder::new()
            .name("bench-dut-metrics".to_owned())
            .spawn(move || {
                std::thread::sleep(open.saturating_duration_since(Instant::now()));
                let before = scrape(addr)?;
                std::thread::sleep(close.saturating_duration_since(Instant::now()));
                scrape(addr)?.since(&before)
            })
            .context("starting the metrics scrape thread")?;
        Ok(WindowScrape(h))
    }

    /// The window's buckets (waits for the closing scrape).
    pub fn finish(self) -> Result<Buckets> {
        match self.0.join() {
            Ok(r) => r,
            Err(_) => bail!("the metrics scrape thread panicked"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(counts: &[u64]) -> String {
        let les = ["0.000001", "0.00001", "0.001"];
        let mut s = String::from("# TYPE tandem_added_latency_histogram_seconds histogram\n");
        for (le, c) in les.iter().zip(counts) {
            s.push_str(&format!("{FAMILY}{{le=\"{le}\"}} {c}\n"));
        }
        s.push_str(&format!("{FAMILY}{{le=\"+Inf\"}} {}\n", counts[3]));
        s.push_str("tandem_added_latency_histogram_seconds_count 0\n");
        s
    }

    #[test]
    fn a_window_is_the_difference_of_two_scrapes() {
        let before = Buckets::parse(&text(&[10, 20, 30, 30])).expect("parses");
        let after = Buckets::parse(&text(&[10, 1_010, 1_029, 1_031])).expect("parses");
        let w = after.since(&before).expect("parses");
        assert_eq!(w.count(), 1_001);
        // 990 of 1001 at or below 10 µs: the median is, the 99th percentile (the 991st
        // value) is not.
        assert_eq!(w.quantile_at_most(0.5), Some(0.00001));
        assert_eq!(w.quantile_at_most(0.99), Some(0.001));
        assert_eq!(w.quantile_at_most(0.9999), Some(f64::INFINITY));
        let share = w.share_at_most(0.00001).expect("parses");
        assert!((share - 990.0 / 1001.0).abs() < 1e-12, "{share}");
        assert_eq!(w.share_at_most(0.5), None, "not a bound");
    }

    #[test]
    fn bad_scrapes_are_errors() {
        assert!(Buckets::parse("tandem_rx_packets_total 5\n").is_err());
        assert!(
            Buckets::parse(&text(&[10, 5, 30, 30])).is_err(),
            "not cumulative"
        );
        let before = Buckets::parse(&text(&[10, 20, 30, 30])).expect("parses");
        let restarted = Buckets::parse(&text(&[0, 0, 1, 1])).expect("parses");
        assert!(restarted.since(&before).is_err());
        let empty = Buckets::parse(&text(&[0, 0, 0, 0])).expect("parses");
        assert_eq!(empty.quantile_at_most(0.99), None);
        assert_eq!(empty.share_at_most(0.00001), None);
    }
}
