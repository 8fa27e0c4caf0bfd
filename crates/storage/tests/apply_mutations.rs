//! The fuzz target `fuzz/fuzz_targets/apply_archive.rs` as a plain test in the default run
//! (cargo-fuzz needs nightly): the seed tars of `fuzz/corpus/apply_archive/` are mutated
//! with a seeded RNG (bit flips, random bytes, interesting values in header fields,
//! truncation, block duplication, splices of two seeds) and applied in both diff formats.
//! Any outcome is fine except a panic or a change outside the layer.
//!
//! `STRATA_MUTATIONS` sets the number of inputs (default 1500); `STRATA_MUTATION_SEED` replays.

mod common;

use std::path::PathBuf;

use common::{apply, Sandbox};
use strata_storage::layout::DiffFormat;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/apply_archive");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the fuzz corpus {}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 5, "the fuzz corpus has its seeds");
    seeds
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        if data.is_empty() {
            break;
        }
        let at = rng.below(data.len());
        match rng.below(7) {
            0 => data[at] ^= 1 << rng.below(8),
            1 => data[at] = rng.next() as u8,
            // Header fields: name, mode, size, typeflag, linkname, prefix.
            2 => {
                let block = at / 512 * 512;
                let field = [0, 100, 124, 156, 157, 345][rng.below(6)];
                let values: [&[u8]; 8] = [
                    b"../",
                    b"/",
                    b".wh.",
                    b"77777777777",
                    b"\x80\xff\xff\xff",
                    b"x",
                    b"L",
                    b"0",
                ];
                let v = values[rng.below(values.len())];
                let end = (block + field + v.len()).min(data.len());
                data[block + field.min(end - block)..end]
                    .copy_from_slice(&v[..end - (block + field.min(end - block))]);
            }
            3 => data.truncate(at),
            4 => {
                let block = at / 512 * 512;
                let end = (block + 512).min(data.len());
                let copy = data[block..end].to_vec();
                data.splice(block..block, copy);
            }
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            _ => data.insert(at, rng.next() as u8),
        }
    }
    data
}

#[test]
fn mutated_seed_tars_never_panic_or_escape() {
    let seeds = seeds();
    let seed = std::env::var("STRATA_MUTATION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_cafe_f00d_u64);
    let count: usize = std::env::var("STRATA_MUTATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1500);
    let mut rng = Rng(seed);
    let (mut applied, mut refused) = (0, 0);
    for i in 0..count {
        let input = mutate(&mut rng, &seeds);
        let format = if i % 2 == 0 {
            DiffFormat::FullCopy
        } else {
            DiffFormat::OVERLAY_TRUSTED
        };
        let sb = Sandbox::new();
        match apply(&sb.layer, format, &input) {
            Ok(_) => applied += 1,
            Err(_) => refused += 1,
        }
        sb.assert_outside_untouched();
    }
    eprintln!("{count} mutated inputs (seed {seed}): {applied} applied, {refused} refused");
    assert!(
        applied > 0 && refused > 0,
        "the mutations exercise both outcomes"
    );
}
