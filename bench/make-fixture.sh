#!/bin/sh
# Generates a reproducible rootfs tar for the benchmarks: BENCH_FILES small files (1-8 KiB,
# seeded pseudo-random contents, ~20 per directory, in a rootfs-like tree) plus BENCH_BIG_COUNT
# files of BENCH_BIG_MB MiB. Same settings, same bytes: the tar's sha256 is printed.
#
#   bench/make-fixture.sh [OUT]        default OUT: bench/fixtures/rootfs.tar
#   BENCH_FILES=20000 BENCH_BIG_COUNT=4 BENCH_BIG_MB=100 BENCH_SEED=1   (the defaults, ~530 MB)
#   BENCH_FILES=2000 BENCH_BIG_MB=10 bench/make-fixture.sh /tmp/quick.tar   (a quick run)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/fixtures/rootfs.tar}
mkdir -p "$(dirname "$out")"
BENCH_FILES=${BENCH_FILES:-20000} BENCH_BIG_COUNT=${BENCH_BIG_COUNT:-4} \
BENCH_BIG_MB=${BENCH_BIG_MB:-100} BENCH_SEED=${BENCH_SEED:-1} \
python3 - "$out.partial" <<'PY'
import io, os, random, sys, tarfile

out = sys.argv[1]
files = int(os.environ["BENCH_FILES"])
big_count = int(os.environ["BENCH_BIG_COUNT"])
big_mb = int(os.environ["BENCH_BIG_MB"])
rng = random.Random(int(os.environ["BENCH_SEED"]))
MTIME = 1_600_000_000

def info(name, kind=tarfile.REGTYPE, size=0, mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.type, ti.size, ti.mode, ti.mtime = kind, size, mode, MTIME
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    return ti

with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tar:
    made = set()
    def mkdirs(path):
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in made:
                made.add(d)
                tar.addfile(info(d, tarfile.DIRTYPE, mode=0o755))
    for top in ["bin", "etc", "tmp", "var/lib", "usr/bin", "usr/lib", "usr/share"]:
        mkdirs(top)
    tar.addfile(info("etc/passwd", size=0))
    for i in range(files):
        top = ["usr/lib", "usr/share", "usr/bin", "var/lib", "etc"][i % 5]
        d = f"{top}/pkg{i // 20:04d}"
        mkdirs(d)
        data = rng.randbytes(rng.randint(1024, 8192))
        tar.addfile(info(f"{d}/file{i:05d}", size=len(data)), io.BytesIO(data))
    mkdirs("opt/big")
    chunk = 1 << 20
    for b in range(big_count):
        size = big_mb * chunk
        class Stream(io.RawIOBase):
            left = size
            def readable(self): return True
            def readinto(self, buf):
                n = min(len(buf), self.left, chunk)
                buf[:n] = rng.randbytes(n)
                self.left -= n
                return n
        tar.addfile(info(f"opt/big/blob{b}", size=size), io.BufferedReader(Stream(), chunk))
PY
mv "$out.partial" "$out"
files=$(tar -tf "$out" | wc -l)
echo "$out: $(du -m --apparent-size "$out" | cut -f1) MB, $files entries, $(sha256sum "$out" | cut -c1-19)"
