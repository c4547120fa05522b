"""gimproot's own logic, without GIMP: the Debian mirror comes from the host's apt sources (no mirror
name in the code), and install_plugin copies the plug-in's whole folder plus the engine's protocol module."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

try:  # tests/gimp as a package or as a plain folder on sys.path (pytest's default import mode)
    from . import gimproot
except ImportError:
    import gimproot

ONE_LINE = """\
# a comment
deb-src http://src.example.org/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://security.example.org/debian-security bookworm-security main
deb https://packages.example.net/apt cloud-sdk-bookworm main
deb http://archive.example.org/debian/ bookworm main contrib  # the archive
deb http://second.example.org/debian bookworm main
"""

DEB822 = """\
Types: deb
# a comment inside the stanza
URIs: http://security.example.org/debian-security
Suites: trixie-security
Components: main

Types: deb-src deb
URIs: http://archive.example.org/debian
 http://other.example.org/debian
Suites: trixie trixie-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Enabled: no
Types: deb
URIs: http://disabled.example.org/debian
Suites: trixie
Components: main
"""

NODESOURCE = """\
Types: deb
URIs: https://nodes.example.com/node_20.x
Suites: nodistro
Components: main
"""


def test_one_line_sources():
    entries = gimproot.parse_one_line_sources(ONE_LINE)
    assert [e["uris"][0] for e in entries] == [
        "http://src.example.org/debian",
        "http://security.example.org/debian-security",
        "https://packages.example.net/apt",
        "http://archive.example.org/debian/",
        "http://second.example.org/debian",
    ]
    assert entries[1]["suites"] == ["bookworm-security"] and entries[3]["components"] == ["main", "contrib"]
    # deb-src, the security archive and a third-party suite are passed over; the first archive wins.
    assert gimproot.mirror_from_entries(entries, "bookworm") == "http://archive.example.org/debian"


def test_deb822_sources():
    entries = gimproot.parse_deb822_sources(DEB822)
    assert len(entries) == 2  # the disabled stanza is dropped
    assert entries[1]["uris"] == ["http://archive.example.org/debian", "http://other.example.org/debian"]
    assert entries[1]["types"] == ["deb-src", "deb"] and entries[1]["suites"] == ["trixie", "trixie-updates"]
    assert gimproot.mirror_from_entries(entries) == "http://archive.example.org/debian"
    assert gimproot.mirror_from_entries(gimproot.parse_deb822_sources(NODESOURCE)) is None


def test_debian_mirror_reads_the_folder_and_honours_the_override(tmp_path, monkeypatch):
    folder = tmp_path / "sources.list.d"
    folder.mkdir()
    (tmp_path / "sources.list").write_text("# nothing here\n")
    (folder / "nodesource.sources").write_text(NODESOURCE)
    (folder / "debian.sources").write_text(DEB822)
    (folder / "old.list.disabled-by-admin").write_text("deb http://ignored.example.org/debian trixie main\n")
    paths = (tmp_path / "sources.list", folder)
    monkeypatch.delenv("NST_KERAS_DEBIAN_MIRROR", raising=False)
    assert gimproot.debian_mirror(paths) == "http://archive.example.org/debian"
    monkeypatch.setenv("NST_KERAS_DEBIAN_MIRROR", "http://chosen.example.org/debian")
    assert gimproot.debian_mirror(paths) == "http://chosen.example.org/debian"
    monkeypatch.delenv("NST_KERAS_DEBIAN_MIRROR")
    (folder / "debian.sources").unlink()
    with pytest.raises(gimproot.RootUnavailable, match="NST_KERAS_DEBIAN_MIRROR"):
        gimproot.debian_mirror(paths)


def test_no_mirror_name_in_gimproot():
    source = Path(gimproot.__file__).read_text()
    assert "debian.org" not in source and "http://" not in source


def test_install_plugin_copies_the_folder_and_the_protocol(tmp_path):
    folder = gimproot.install_plugin(tmp_path / "profile", {"python": "/x/python"})
    names = sorted(p.name for p in folder.iterdir())
    sources = sorted(p.name for p in gimproot.PLUGIN_SOURCE.iterdir() if p.suffix == ".py")
    assert names == sorted([*sources, "protocol.py", "nst-keras-settings.json"])
    assert (folder / "protocol.py").read_bytes() == gimproot.PROTOCOL_SOURCE.read_bytes()
    assert os.access(folder / "nst-keras.py", os.X_OK) and not os.access(folder / "nst_engine.py", os.X_OK)
    assert "protocol.py" not in sources  # never a hand copy in the repository
