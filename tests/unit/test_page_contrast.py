"""The pages' focus ring and input borders reach 3:1 against what they sit on (WCAG 2.2, 1.4.11 non-text contrast)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = (Path(__file__).resolve().parents[2] / "services" / "billing_api" / "static" / "billing.css").read_text()


def colour(name: str) -> tuple[int, int, int]:
    value = re.search(rf"--{name}:\s*#([0-9a-fA-F]{{6}})", CSS).group(1)
    return tuple(int(value[i : i + 2], 16) for i in (0, 2, 4))


def luminance(rgb: tuple[int, int, int]) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_contrast_formula_gives_the_known_extremes():
    assert contrast((0, 0, 0), (255, 255, 255)) == pytest.approx(21.0)
    assert contrast((119, 119, 119), (255, 255, 255)) == pytest.approx(4.48, abs=0.01)  # #777 on white


@pytest.mark.parametrize("part", ["focus", "input-border"])
@pytest.mark.parametrize("background", ["surface", "page"])
def test_focus_ring_and_input_borders_reach_three_to_one(part, background):
    assert contrast(colour(part), colour(background)) >= 3.0


def test_the_focus_ring_and_the_inputs_use_those_colours():
    assert re.search(r":focus-visible\s*{\s*outline:\s*3px solid var\(--focus\)", CSS)
    assert re.search(r"input\[type=text\][^{]*{\s*border: 1px solid var\(--input-border\)", CSS)
