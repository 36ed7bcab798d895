"""The offline front end: npm tarballs unpacked into Solara's proxy cache folder."""

import io
import json
import tarfile

import pytest

from viz import assets


def _tarball(path, top="package", files=None):
    files = files or {"package.json": json.dumps({"name": "x"}), "build/x.js": "x=1"}
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_unpack_puts_package_contents_in_place(tmp_path):
    dest = tmp_path / "cdn" / "x@1"
    assets._unpack(_tarball(tmp_path / "x.tgz"), dest)
    assert (dest / "build" / "x.js").read_text() == "x=1"
    assert (dest / "package.json").is_file()
    # nothing temporary is left beside it
    assert sorted(p.name for p in dest.parent.iterdir()) == ["x@1"]


def test_unpack_rejects_a_tarball_without_package_json(tmp_path):
    bad = _tarball(tmp_path / "bad.tgz", files={"readme.txt": "hi"})
    with pytest.raises(assets.AssetsError, match="package.json"):
        assets._unpack(bad, tmp_path / "cdn" / "bad@1")
    assert list((tmp_path / "cdn").iterdir()) == []


def test_missing_lists_absent_packages_and_ensure_skips_present_ones(tmp_path, monkeypatch):
    assert assets.missing(tmp_path) == list(assets.PACKAGES)
    for name, version in assets.PACKAGES:
        d = tmp_path / assets.folder_name(name, version)
        d.mkdir(parents=True)
        (d / "package.json").write_text("{}")
    assert assets.missing(tmp_path) == []
    monkeypatch.setenv("PATH", "")  # npm is not needed when everything is present
    assert assets.ensure_assets(tmp_path, quiet=True) == []


def test_a_missing_npm_gives_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(assets.AssetsError, match="npm not found") as err:
        assets.ensure_assets(tmp_path, quiet=True)
    assert "\n" not in str(err.value)


def test_setup_ui_reports_a_missing_npm_with_exit_code_2(tmp_path, monkeypatch, capsys):
    from experiments.cli import main

    monkeypatch.setenv("SOLARA_ASSETS_PROXY_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(assets, "cache_dir", lambda: tmp_path)
    assert main(["setup-ui"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lanthanide: error: npm not found") and "\n" not in err


def test_explore_rejects_a_bad_port_in_one_line(capsys):
    from experiments.cli import main

    assert main(["explore", "--port", "70000"]) == 2
    err = capsys.readouterr().err.strip()
    assert "1-65535" in err and "\n" not in err


def test_lanthanide_run_does_not_import_the_ui_stack():
    import subprocess
    import sys

    code = (
        "import sys; from experiments.cli import main; "
        "main(['run', '--months', '2', '--firms', '60', '--out', sys.argv[1]]); "
        "print('solara' in sys.modules)"
    )
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        res = subprocess.run(
            [sys.executable, "-c", code, f"{tmp}/out"], capture_output=True, text=True, check=True
        )
    assert res.stdout.strip().splitlines()[-1] == "False"
