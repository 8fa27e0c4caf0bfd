//! Signal names and numbers as `docker kill -s` takes them: `KILL`, `SIGKILL`, `kill`, `9`,
//! `RTMIN+3`, `SIGRTMAX-1`.

use crate::error::{ErrorKind, Kind};

/// A signal name or number that is not one; the message says what is expected.
#[derive(Debug, thiserror::Error)]
#[error("invalid signal {0:?}: give a name such as TERM or KILL, or a number")]
pub struct InvalidSignal(pub String);

impl Kind for InvalidSignal {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

/// Linux's (generic ABI: x86, arm, aarch64, riscv) named signals, with the aliases Docker's
/// table also accepts (`CLD`, `IOT`, `POLL`).
const NAMED: [(&str, i32); 34] = [
    ("ABRT", 6),
    ("ALRM", 14),
    ("BUS", 7),
    ("CHLD", 17),
    ("CLD", 17),
    ("CONT", 18),
    ("FPE", 8),
    ("HUP", 1),
    ("ILL", 4),
    ("INT", 2),
    ("IO", 29),
    ("IOT", 6),
    ("KILL", 9),
    ("PIPE", 13),
    ("POLL", 29),
    ("PROF", 27),
    ("PWR", 30),
    ("QUIT", 3),
    ("SEGV", 11),
    ("STKFLT", 16),
    ("STOP", 19),
    ("SYS", 31),
    ("TERM", 15),
    ("TRAP", 5),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("USR1", 10),
    ("USR2", 12),
    ("VTALRM", 26),
    ("WINCH", 28),
    ("XCPU", 24),
    ("XFSZ", 25),
];

/// The two signals a stop sends.
pub const SIGTERM: i32 = 15;
pub const SIGKILL: i32 = 9;

/// The kernel's first and last real-time signals (glibc keeps 32 and 33 for itself).
const RTMIN: i32 = 34;
const RTMAX: i32 = 64;
/// Docker names `RTMIN+1..=RTMIN+15` and `RTMAX-14..=RTMAX-1`: the real-time range split in
/// two halves, each signal with one name.
const RTMIN_OFFSETS: i32 = 15;
const RTMAX_OFFSETS: i32 = 14;

/// The signal number for `text`: a number from 1 to 64, or a name with or without `SIG`, in
/// any case.
pub fn parse_signal(text: &str) -> Result<i32, InvalidSignal> {
    if let Ok(n) = text.parse::<i32>() {
        if (1..=RTMAX).contains(&n) {
            return Ok(n);
        }
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    by_name(name).ok_or_else(|| InvalidSignal(text.to_string()))
}

fn by_name(name: &str) -> Option<i32> {
    if let Some((_, n)) = NAMED.iter().find(|(known, _)| *known == name) {
        return Some(*n);
    }
    let offset = |rest: &str, max: i32| {
        rest.parse::<i32>()
            .ok()
            .filter(|n| (1..=max).contains(n) && !rest.starts_with('+'))
    };
    match name {
        "RTMIN" => Some(RTMIN),
        "RTMAX" => Some(RTMAX),
        _ => {
            if let Some(rest) = name.strip_prefix("RTMIN+") {
                offset(rest, RTMIN_OFFSETS).map(|n| RTMIN + n)
            } else if let Some(rest) = name.strip_prefix("RTMAX-") {
                offset(rest, RTMAX_OFFSETS).map(|n| RTMAX - n)
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_real_time_signals_parse_like_docker() {
        let table = [
            ("KILL", 9),
            ("SIGKILL", 9),
            ("sigterm", 15),
            ("term", 15),
            ("9", 9),
            ("64", 64),
            ("HUP", 1),
            ("STOP", 19),
            ("SIGTSTP", 20),
            ("WINCH", 28),
            ("CHLD", 17),
            ("CLD", 17),
            ("TTIN", 21),
            ("TTOU", 22),
            ("URG", 23),
            ("IO", 29),
            ("POLL", 29),
            ("IOT", 6),
            ("PWR", 30),
            ("SYS", 31),
            ("RTMIN", 34),
            ("SIGRTMIN+1", 35),
            ("RTMIN+15", 49),
            ("RTMAX-14", 50),
            ("RTMAX-1", 63),
            ("RTMAX", 64),
        ];
        for (text, number) in table {
            assert_eq!(parse_signal(text).unwrap(), number, "{text}");
        }
    }

    #[test]
    fn unknown_names_and_numbers_out_of_range_are_refused() {
        for bad in [
            "0", "65", "-1", "", "SIG", "NOPE", "RTMIN+16", "RTMIN+0", "RTMIN++1", "RTMAX-15",
            "RTMIN-1",
        ] {
            let err = parse_signal(bad).unwrap_err();
            assert!(err.to_string().contains("invalid signal"), "{bad}: {err}");
        }
    }
}
