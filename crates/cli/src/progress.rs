//! Progress for long reads: a bar on a terminal, a plain line every few seconds otherwise
//! (indicatif hides itself off a terminal, so those lines are printed here).

use std::io::{IsTerminal, Read};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Counts bytes read through it and reports them under `label`.
pub struct ProgressReader<R> {
    inner: R,
    label: String,
    bar: Option<ProgressBar>,
    read: u64,
    total: Option<u64>,
    last_line: Instant,
}

const PLAIN_LINE_EVERY: Duration = Duration::from_secs(2);

impl<R: Read> ProgressReader<R> {
    pub fn new(inner: R, label: &str, total: Option<u64>) -> Self {
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
        ProgressReader {
            inner,
            label: label.to_string(),
            bar,
            read: 0,
            total,
            last_line: Instant::now(),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn report(&mut self) {
        match &self.bar {
            Some(bar) => bar.set_position(self.read),
            None if self.last_line.elapsed() >= PLAIN_LINE_EVERY => {
                self.last_line = Instant::now();
                let mib = self.read as f64 / (1 << 20) as f64;
                match self.total {
                    Some(t) if t > 0 => eprintln!(
                        "{}: {mib:.1} MiB of {:.1} MiB ({}%)",
                        self.label,
                        t as f64 / (1 << 20) as f64,
                        self.read * 100 / t
                    ),
                    _ => eprintln!("{}: {mib:.1} MiB", self.label),
                }
            }
            None => {}
        }
    }
}

impl<R: Read> Read for ProgressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        self.report();
        Ok(n)
    }
}
