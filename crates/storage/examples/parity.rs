//! A tiny driver-level stand-in for `strata import / mount / diff`, used by
//! `bench/docker-parity.sh` to compare the storage library with a real dockerd while the CLI
//! and layer store are being finished. One base layer `base` and one writable layer `w` under
//! `ROOT/<driver>`, nothing else (no metadata, no refcounts). The driver is overlay2, or vfs if
//! `STRATA_PARITY_DRIVER=vfs`.
//!
//! ```text
//! parity ROOT import TAR    apply TAR as layer `base`; print its diffID
//! parity ROOT mount         create `w` on `base` if needed, mount it; print the merged dir
//! parity ROOT diff          print `w`'s changes against `base` as `docker diff` does
//! parity ROOT export FILE   write `w`'s changes as a layer tar
//! parity ROOT umount        unmount `w`
//! ```

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::Path;
use std::process::ExitCode;

use strata_storage::digest::HashingReader;
use strata_storage::driver::overlay2::Overlay2;
use strata_storage::driver::vfs::Vfs;
use strata_storage::{Driver, Error};

const BASE: &str = "base";
const RW: &str = "w";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [root, "import", tar] => open(root).and_then(|d| import(&*d, Path::new(tar))),
        [root, "mount"] => open(root).and_then(|d| mount(&*d)),
        [root, "diff"] => open(root).and_then(|d| diff(&*d)),
        [root, "export", out] => open(root).and_then(|d| export(&*d, Path::new(out))),
        [root, "umount"] => open(root).and_then(|d| d.unmount(RW)),
        _ => {
            eprintln!("usage: parity ROOT (import TAR | mount | diff | export FILE | umount)");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("parity: {e}");
            ExitCode::FAILURE
        }
    }
}

fn open(root: &str) -> strata_storage::Result<Box<dyn Driver>> {
    let root = Path::new(root);
    Ok(match std::env::var("STRATA_PARITY_DRIVER").as_deref() {
        Ok("vfs") => Box::new(Vfs::open(&root.join("vfs"), &[])?),
        _ => Box::new(Overlay2::open(&root.join("overlay2"), &[])?),
    })
}

fn import(d: &dyn Driver, tar: &Path) -> strata_storage::Result<()> {
    let open = || File::open(tar).map_err(|e| Error::io(format!("opening {}", tar.display()), e));
    d.create(BASE, None, false)?;
    let diff_id = match d.apply(BASE, &mut BufReader::new(open()?)) {
        Ok(report) => report.diff_id,
        Err(Error::Unsupported(why)) => {
            // Until archive::apply lands: a base layer has no whiteouts, so a plain unpack of
            // our own trusted tar gives the same diff dir.
            eprintln!("parity: {why}; unpacking with the tar crate instead");
            unpack(&d.diff_dir(BASE), open()?)?
        }
        Err(e) => return Err(e),
    };
    println!("{diff_id}");
    Ok(())
}

fn unpack(dir: &Path, file: File) -> strata_storage::Result<strata_storage::Digest> {
    let mut hashing = HashingReader::new(BufReader::new(file));
    let mut archive = tar::Archive::new(&mut hashing);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(true);
    let ctx = |e| Error::io(format!("unpacking into {}", dir.display()), e);
    archive.unpack(dir).map_err(ctx)?;
    // The diffID covers the whole stream, padding after the end-of-archive blocks included.
    io::copy(&mut hashing, &mut io::sink()).map_err(ctx)?;
    Ok(hashing.finish().0)
}

fn mount(d: &dyn Driver) -> strata_storage::Result<()> {
    if !d.list()?.iter().any(|id| id == RW) {
        d.create(RW, Some(BASE), true)?;
    }
    println!("{}", d.mount(RW)?.display());
    Ok(())
}

fn diff(d: &dyn Driver) -> strata_storage::Result<()> {
    let mut out = io::stdout().lock();
    for change in d.changes(RW, Some(BASE))? {
        writeln!(out, "{change}").map_err(|e| Error::io("writing to stdout", e))?;
    }
    Ok(())
}

fn export(d: &dyn Driver, out: &Path) -> strata_storage::Result<()> {
    let mut file =
        File::create(out).map_err(|e| Error::io(format!("creating {}", out.display()), e))?;
    d.export(RW, Some(BASE), &mut file)?;
    Ok(())
}
