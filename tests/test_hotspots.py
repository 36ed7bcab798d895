"""The profiling command of benchmarks/hotspots.py (no speed is asserted)."""

from __future__ import annotations

from benchmarks.hotspots import main


def test_sampling_profile_names_the_model_phases(tmp_path, capsys):
    page = tmp_path / "profile.html"
    assert main(["--sampler", "--firms", "60", "--months", "6", "--html", str(page)]) == 0
    out = capsys.readouterr().out
    assert "pyinstrument, 6 months at 60 firms" in out
    assert "_settle" in out and "_plan_production" in out
    assert page.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
    assert not list(tmp_path.glob("*.tmp"))


def test_cprofile_lists_by_cumulative_and_self_time(capsys):
    assert main(["--firms", "60", "--months", "3", "--top", "5"]) == 0
    out = capsys.readouterr().out
    assert "by cumulative time" in out and "by self time" in out and "abm/model.py" in out


def test_bad_input_is_one_line_and_exit_2(capsys):
    assert main(["--months", "0"]) == 2
    out = capsys.readouterr().out.strip()
    assert out == "hotspots: --months must be between 1 and 600, got 0"
