"""tools/fetch_data.py: pinned files only, names normalised, nothing written on a mismatch (no network used)."""

import gzip

from tools import fetch_data


def test_install_checks_pins(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a-idx1-ubyte").write_bytes(b"hello")
    pins = {"a-idx1-ubyte": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}
    found = fetch_data._search(src, pins)
    assert fetch_data.install(found, tmp_path / "dest", pins)
    assert (tmp_path / "dest" / "a-idx1-ubyte").read_bytes() == b"hello"
    assert fetch_data.have_all(tmp_path / "dest", pins)
    bad = {"a-idx1-ubyte": "0" * 64}
    assert not fetch_data.install(found, tmp_path / "dest2", bad)
    assert not (tmp_path / "dest2").exists()
    assert not fetch_data.install({}, tmp_path / "dest3", pins)


def test_sdist_spelling_and_gz_content_pin(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "train-labels.idx1-ubyte").write_bytes(b"1")
    (tmp_path / "x" / "._train-labels.idx1-ubyte").write_bytes(b"apple double")
    found = fetch_data._search(tmp_path, {"train-labels-idx1-ubyte": ""})
    assert found == {"train-labels-idx1-ubyte": tmp_path / "x" / "train-labels.idx1-ubyte"}
    p = tmp_path / "f.gz"
    p.write_bytes(gzip.compress(b"hello", mtime=0))
    assert fetch_data.sha256(p) == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
