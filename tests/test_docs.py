"""Documentation stays true: ODD's process overview matches Model.step; examples validate."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from abm.model import RareEarthModel
from abm.recorder import VARIABLES
from abm.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent


def _step_phases() -> list[str]:
    src = inspect.getsource(RareEarthModel.step)
    return re.findall(r"self\.(_[a-z_]+)\(", src)


def test_odd_process_overview_matches_step_line_by_line():
    odd = (ROOT / "docs" / "ODD.md").read_text()
    section = odd.split("## 3. Process overview and scheduling")[1].split("## 4.")[0]
    listed = re.findall(r"^\d+\. `(_[a-z_]+)\(", section, flags=re.M)
    assert listed == _step_phases()
    assert len(listed) == 8


def test_odd_has_the_seven_elements_in_order():
    odd = (ROOT / "docs" / "ODD.md").read_text()
    heads = re.findall(r"^## (\d)\. ", odd, flags=re.M)
    assert heads == ["1", "2", "3", "4", "5", "6", "7"]


def test_every_output_variable_is_documented():
    doc = (ROOT / "docs" / "OUTPUTS.md").read_text()
    missing = [v for v in VARIABLES if f"`{v}`" not in doc]
    assert missing == []


@pytest.mark.parametrize("doc", ["README.md", "docs/LEVERS.md"])
def test_toml_examples_in_docs_validate(doc, tmp_path):
    text = (ROOT / doc).read_text()
    blocks = re.findall(r"```toml\n(.*?)```", text, flags=re.S)
    assert blocks, f"{doc} has no TOML example"
    for k, block in enumerate(blocks):
        path = tmp_path / f"example{k}.toml"
        path.write_text(block)
        scn = load_scenario(str(path))
        assert scn.events
