//! Applies a layer tar (any compression) from a file into a directory and prints the report
//! and the elapsed time: `apply_bench <tar> <dir> [overlay|naive]`. Used to compare against
//! `tar -x` on the same input.

use std::time::Instant;

use strata_storage::driver::DiffFormat;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, tar, dir, rest @ ..] = args.as_slice() else {
        eprintln!("usage: apply_bench <tar> <dir> [overlay|naive]");
        std::process::exit(2);
    };
    let format = match rest.first().map(String::as_str) {
        Some("naive") => DiffFormat::Naive,
        _ => DiffFormat::Overlay,
    };
    std::fs::create_dir_all(dir).unwrap();
    let mut input = std::fs::File::open(tar).unwrap();
    let start = Instant::now();
    let report = strata_storage::archive::apply(dir.as_ref(), format, &mut input).unwrap();
    println!("{report:?} in {:.2}s", start.elapsed().as_secs_f64());
}
