"""The explorer page (being built)."""

import solara
import solara.widgets


@solara.component
def Page():
    """The explorer."""
    solara.Title("Lanthanide explorer")
    with solara.Card("Lanthanide"):
        solara.Button("Step", icon_name="mdi-step-forward")
        solara.widgets.VegaLite.element(
            spec={
                "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
                "data": {"values": [{"x": 1, "y": 2}, {"x": 2, "y": 3}]},
                "mark": "line",
                "encoding": {
                    "x": {"field": "x", "type": "quantitative"},
                    "y": {"field": "y", "type": "quantitative"},
                },
            }
        )
