"""Captioned grids of pictures: sweep results, feature maps, filter weights.

One layout for every grid the project draws: tiles scaled to a common side, a wrapped caption
under each tile and a wrapped title above them all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from visexp.images import enlarge

LINE = 16
"""Height of one line of caption text, in pixels."""
GAP = 8
"""Space around each tile, in pixels."""
MIN_WIDTH = 320
"""A grid of few small tiles is widened to this, so that its title stays readable."""


def font() -> ImageFont.ImageFont:
    return ImageFont.load_default(size=13)


def wrap(text: str, face: ImageFont.ImageFont, width: int) -> list[str]:
    """Break `text` at spaces into lines no wider than `width` pixels (a long word stays whole)."""
    lines: list[str] = []
    for word in text.split():
        if lines and face.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def scaled(picture: Image.Image, side: int) -> Image.Image:
    """`picture` in RGB, enlarged (nearest neighbour: pixels stay crisp) until its shorter side is
    at least `side`; larger pictures, such as grids of feature maps, keep their size."""
    return enlarge(picture.convert("RGB"), side)


def tile_grid(
    pictures: Sequence[Image.Image], captions: Sequence[str], title: str = "", side: int = 160, columns: int = 5
) -> Image.Image:
    """Pictures scaled to `side`, `columns` to a row, each with its caption, under `title`."""
    face = font()
    tiles = [scaled(picture, side) for picture in pictures]
    columns = max(1, min(columns, len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    cell_w = max((tile.width for tile in tiles), default=side) + GAP
    caption_lines = [wrap(caption, face, cell_w - GAP) for caption in captions]
    text_h = LINE * max((len(lines) for lines in caption_lines), default=0)
    cell_h = max((tile.height for tile in tiles), default=side) + GAP + text_h
    width = max(columns * cell_w, MIN_WIDTH)
    title_lines = wrap(title, face, width - 12)
    header = LINE * len(title_lines) + GAP if title_lines else GAP // 2
    grid = Image.new("RGB", (width, header + rows * cell_h), "white")
    draw = ImageDraw.Draw(grid)
    for number, line in enumerate(title_lines):
        draw.text((6, 4 + number * LINE), line, fill="black", font=face)
    for index, tile in enumerate(tiles):
        left = (index % columns) * cell_w + GAP // 2
        top = header + (index // columns) * cell_h
        grid.paste(tile, (left, top))
        for number, line in enumerate(caption_lines[index] if index < len(caption_lines) else []):
            draw.text((left, top + tile.height + 3 + number * LINE), line, fill="black", font=face)
    return grid
