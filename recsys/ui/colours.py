"""A swatch colour for an article's colour name ("Dark Blue", "Yellowish Brown", "Light Pink", "Off White").

Catalogues name colours rather than give RGB values, so the card's swatch is worked out from the words: the last
known colour word is the base, an "-ish" word tints it, "Light" / "Dark" mix it with white / black. A name
without any colour word ("Unknown", "Other", a spec's own codes) gets no swatch colour (``None``), so the card
shows a neutral placeholder instead of a made-up colour.
"""

from __future__ import annotations

import re

RGB = tuple[int, int, int]

BASE: dict[str, RGB] = {
    "black": (20, 20, 20),
    "white": (250, 250, 250),
    "grey": (128, 128, 128),
    "gray": (128, 128, 128),
    "blue": (40, 80, 170),
    "turquoise": (40, 190, 180),
    "green": (50, 140, 60),
    "khaki": (150, 140, 90),
    "yellow": (240, 205, 40),
    "orange": (240, 130, 30),
    "red": (200, 30, 40),
    "pink": (235, 120, 165),
    "purple": (120, 60, 150),
    "lilac": (190, 160, 210),
    "brown": (120, 75, 40),
    "beige": (215, 195, 160),
    "mole": (110, 100, 90),
    "gold": (205, 170, 60),
    "silver": (190, 190, 195),
    "bronze": (175, 115, 60),
    "copper": (185, 100, 50),
    "transparent": (235, 240, 245),
}
MIX = {"light": ((255, 255, 255), 0.45), "dark": ((0, 0, 0), 0.4), "off": ((128, 128, 128), 0.08)}
TINT = 0.3  # how much an "-ish" word colours the base


def _mix(a: RGB, b: RGB, share_of_b: float) -> RGB:
    return tuple(round(x * (1 - share_of_b) + y * share_of_b) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def swatch_rgb(name: str | None) -> RGB | None:
    """The RGB of a colour name, or ``None`` when the name has no colour word."""
    if not name:
        return None
    words = [w for w in re.split(r"[\s/_-]+", name.lower()) if w]
    bases = [w for w in words if w in BASE]
    if not bases:
        return None
    rgb = BASE[bases[-1]]
    for word in words:
        if word.endswith("ish") and word[:-3] in BASE:  # yellowish, greenish, greyish
            rgb = _mix(rgb, BASE[word[:-3]], TINT)
    for word in words:
        if word in MIX:
            towards, share = MIX[word]
            rgb = _mix(rgb, towards, share)
    return rgb


def swatch_hex(name: str | None) -> str | None:
    """``#rrggbb`` for a colour name (see :func:`swatch_rgb`)."""
    rgb = swatch_rgb(name)
    return None if rgb is None else "#{:02x}{:02x}{:02x}".format(*rgb)
