//! Applies a layer tar (any compression) from a file into a directory and prints the report
//! and the elapsed time: `apply_bench <tar> <dir> [overlay|naive] [record]`. Used to compare
//! against `tar -x` on the same input. With `record`, also writes the tar-split record to
//! `<dir>.tar-split`, prints its size, then rebuilds the tar from it (into a sha256 sink) and
//! prints the reassembly throughput and whether the digest matches.

use std::time::Instant;

use strata_storage::archive;
use strata_storage::digest::HashingWriter;
use strata_storage::fs::Root;
use strata_storage::layout::DiffFormat;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, tar, dir, rest @ ..] = args.as_slice() else {
        eprintln!("usage: apply_bench <tar> <dir> [overlay|naive] [record]");
        std::process::exit(2);
    };
    let format = match rest.first().map(String::as_str) {
        Some("naive") => DiffFormat::FullCopy,
        _ => DiffFormat::OVERLAY_TRUSTED,
    };
    let record = rest.iter().any(|a| a == "record");
    std::fs::create_dir_all(dir).unwrap();
    let mut input = std::fs::File::open(tar).unwrap();
    let start = Instant::now();
    if !record {
        let report = archive::apply(dir.as_ref(), format, &mut input).unwrap();
        println!("{report:?} in {:.2}s", start.elapsed().as_secs_f64());
        return;
    }
    let split_path = format!("{dir}.tar-split");
    let mut split = std::io::BufWriter::new(std::fs::File::create(&split_path).unwrap());
    let report = archive::apply_recording(dir.as_ref(), format, &mut input, &mut split).unwrap();
    drop(split);
    println!("{report:?} in {:.2}s", start.elapsed().as_secs_f64());
    let size = std::fs::metadata(&split_path).unwrap().len();
    println!("tar-split record: {size} bytes");

    let start = Instant::now();
    let root = Root::open(dir.as_ref()).unwrap();
    let mut record = std::io::BufReader::new(std::fs::File::open(&split_path).unwrap());
    let mut sink = HashingWriter::new(std::io::sink());
    archive::reassemble(&mut record, &root, &mut sink).unwrap();
    let (_, digest, n) = sink.finish();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "reassembled {n} bytes in {secs:.2}s ({:.0} MB/s), digest {}",
        n as f64 / secs / 1e6,
        if digest == report.diff_id {
            "matches"
        } else {
            "DIFFERS"
        }
    );
}
