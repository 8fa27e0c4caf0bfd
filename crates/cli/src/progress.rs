//! Progress for long operations: a bar on a terminal, a plain line every few seconds
//! otherwise (indicatif hides itself off a terminal, so those lines are printed here).
//! [`ProgressReader`] counts the bytes of a stream it reads; [`Events`] shows the
//! [`Progress`] events a load or save reports.

use std::io::{IsTerminal, Read};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use strata_image::archive::Progress;

const PLAIN_LINE_EVERY: Duration = Duration::from_secs(2);

/// A byte counter shown as a bar (terminal) or as a plain line every few seconds.
struct Meter {
    label: String,
    bar: Option<ProgressBar>,
    done: u64,
    total: Option<u64>,
    last_line: Instant,
}

impl Meter {
    fn new(label: &str, total: Option<u64>) -> Meter {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(len) => ProgressBar::new(len).with_style(
                    ProgressStyle::with_template(
                        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                ),
                None => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{spinner} {msg} {bytes} {bytes_per_sec}")
                        .expect("valid template"),
                ),
            };
            bar.set_message(label.to_string());
            bar
        });
        Meter {
            label: label.to_string(),
            bar,
            done: 0,
            total,
            last_line: Instant::now(),
        }
    }

    fn add(&mut self, bytes: u64) {
        self.done += bytes;
        match &self.bar {
            Some(bar) => bar.set_position(self.done),
            None if self.last_line.elapsed() >= PLAIN_LINE_EVERY => {
                self.last_line = Instant::now();
                let mib = self.done as f64 / (1 << 20) as f64;
                match self.total {
                    Some(t) if t > 0 => eprintln!(
                        "{}: {mib:.1} MiB of {:.1} MiB ({}%)",
                        self.label,
                        t as f64 / (1 << 20) as f64,
                        self.done * 100 / t
                    ),
                    _ => eprintln!("{}: {mib:.1} MiB", self.label),
                }
            }
            None => {}
        }
    }

    /// A line above the bar, or on its own off a terminal.
    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Counts bytes read through it and reports them under `label`.
pub struct ProgressReader<R> {
    inner: R,
    meter: Meter,
}

impl<R: Read> ProgressReader<R> {
    pub fn new(inner: R, label: &str, total: Option<u64>) -> Self {
        ProgressReader {
            inner,
            meter: Meter::new(label, total),
        }
    }

    pub fn finish(&self) {
        self.meter.finish();
    }
}

impl<R: Read> Read for ProgressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.meter.add(n as u64);
        Ok(n)
    }
}

/// Shows the events of a load or save (layers and bytes); silent when `quiet`. Finished
/// images are kept for the caller to print once the whole operation succeeded.
pub struct Events {
    meter: Option<Meter>,
    verb: &'static str,
    pub images: Vec<(String, Vec<String>)>,
}

impl Events {
    /// `verb` is `Loading` or `Saving`; `total` the bytes expected, if known.
    pub fn new(verb: &'static str, total: Option<u64>, quiet: bool) -> Events {
        Events {
            meter: (!quiet).then(|| Meter::new(&verb.to_lowercase(), total)),
            verb,
            images: Vec::new(),
        }
    }

    pub fn on(&mut self, event: Progress) {
        if let Progress::Image { id, tags } = event {
            self.images.push((id, tags));
            return;
        }
        let Some(meter) = &mut self.meter else {
            return;
        };
        match event {
            Progress::Bytes(n) => meter.add(n),
            Progress::Layer {
                index,
                count,
                digest,
            } => {
                let text = format!("{} layer {index}/{count} {}", self.verb, short(&digest));
                match &meter.bar {
                    Some(bar) => bar.set_message(text),
                    None => meter.line(&text),
                }
            }
            Progress::LayerExists { digest } => {
                meter.line(&format!("Layer {} already exists", short(&digest)))
            }
            Progress::Image { .. } => {}
        }
    }

    pub fn finish(&self) {
        if let Some(meter) = &self.meter {
            meter.finish();
        }
    }
}

/// `sha256:0123456789ab`: enough to tell layers apart in a progress line.
fn short(digest: &str) -> &str {
    let end = digest.find(':').map_or(12, |i| i + 13);
    &digest[..end.min(digest.len())]
}
