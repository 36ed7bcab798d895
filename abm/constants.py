"""Fixed dimensions of the world: countries, element groups, stages, traded items, firm kinds.

The model keeps every per-country and per-item quantity in numpy arrays indexed by the
positions defined here, so a country or an item is always the same integer everywhere.
"""

from __future__ import annotations

from enum import IntEnum

COUNTRIES: tuple[str, ...] = (
    "China",
    "Japan",
    "United States",
    "Australia",
    "EU",
    "Korea",
    "Myanmar",
    "Rest of World",
)
C = len(COUNTRIES)
CHINA = COUNTRIES.index("China")
JAPAN = COUNTRIES.index("Japan")
COUNTRY_INDEX = {name: i for i, name in enumerate(COUNTRIES)}

GOODS: tuple[str, ...] = ("light", "ndpr", "heavy")
"""Element groups: light (La, Ce and other light REEs), ndpr (Nd, Pr), heavy (Dy, Tb)."""
G = len(GOODS)
GOOD_INDEX = {name: i for i, name in enumerate(GOODS)}

STAGES: tuple[str, ...] = ("concentrate", "oxide", "magnet")
STAGE_INDEX = {name: i for i, name in enumerate(STAGES)}

ITEMS: tuple[tuple[str, str], ...] = (
    ("light", "concentrate"),
    ("ndpr", "concentrate"),
    ("heavy", "concentrate"),
    ("light", "oxide"),
    ("ndpr", "oxide"),
    ("heavy", "oxide"),
    ("ndpr", "magnet"),
    ("heavy", "magnet"),
)
"""Traded items (good, stage). Concentrate and oxide are counted in tonnes of rare-earth oxide
(REO) content; magnets in tonnes of sintered NdFeB magnet. ``("ndpr", "magnet")`` is the standard
grade; ``("heavy", "magnet")`` is the high-temperature grade that carries dysprosium/terbium."""
I = len(ITEMS)  # noqa: E741
ITEM_INDEX = {item: i for i, item in enumerate(ITEMS)}
CONC = (0, 1, 2)
OXIDE = (3, 4, 5)
MAG_STD = 6
MAG_HT = 7
ITEM_GOOD = tuple(GOOD_INDEX[g] for g, _ in ITEMS)
ITEM_STAGE = tuple(STAGE_INDEX[s] for _, s in ITEMS)


class FirmKind(IntEnum):
    """What a firm does in the supply chain."""

    MINER = 0
    SEPARATOR = 1
    MAGNET_MAKER = 2
    RECYCLER = 3
    MANUFACTURER = 4


KIND_NAMES = {k: k.name.lower() for k in FirmKind}
KIND_BY_NAME = {k.name.lower(): k for k in FirmKind}

SECTORS: tuple[str, ...] = ("automotive", "electronics", "wind", "defence", "industrial")
S = len(SECTORS)
SECTOR_INDEX = {name: i for i, name in enumerate(SECTORS)}

SEGMENTS = ("china_domestic", "world", "local")
"""Price segments reported: China's domestic price, the tonnage-weighted price outside China,
and each country's local price (with the ``country`` column set)."""
