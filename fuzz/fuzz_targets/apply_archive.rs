//! Feeds arbitrary bytes to the layer applier (compression detection, tar parsing, whiteout
//! conversion, fd-relative creation) in both diff formats, into a fresh directory beside a
//! sentinel one. Any outcome is fine except a panic, a hang, or a change outside the layer.
//!
//!     cargo +nightly fuzz run apply_archive fuzz/corpus/apply_archive -- -max_total_time=60

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use strata_storage::layout::DiffFormat;

fn listing(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let len = e.metadata().map(|m| m.len()).unwrap_or(0);
            (e.file_name().to_string_lossy().into_owned(), len)
        })
        .collect();
    v.sort();
    v
}

fuzz_target!(|data: &[u8]| {
    for format in [DiffFormat::FullCopy, DiffFormat::OVERLAY_TRUSTED] {
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("layer");
        let outside = dir.path().join("outside");
        std::fs::create_dir(&layer).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("sentinel"), b"keep").unwrap();
        let before = (listing(dir.path()), listing(&outside));
        let _ = strata_storage::archive::apply(&layer, format, &mut &data[..]);
        assert_eq!(before, (listing(dir.path()), listing(&outside)), "wrote outside the layer");
        assert_eq!(std::fs::read(outside.join("sentinel")).unwrap(), b"keep");
    }
});
