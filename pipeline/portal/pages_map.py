"""An inline SVG map of a dataset's point, line and polygon values: no tile server, works offline.

The values are the /resource JSON values (GeoJSON geometries; a `location` as latitude and
longitude); coordinates are drawn on an equirectangular plot scaled to their bounding box, with
longitude shrunk by the cosine of the middle latitude so shapes keep their proportions.
"""

from __future__ import annotations

import math
from html import escape

GEO_TYPES = ("point", "multipoint", "line", "multiline", "polygon", "multipolygon", "location")
WIDTH, HEIGHT, PAD = 640, 400, 12


def _pairs(coords) -> list[tuple[float, float]]:
    """Every [x, y] pair inside nested coordinate lists."""
    if isinstance(coords, (list, tuple)) and len(coords) >= 2 and all(isinstance(v, (int, float)) for v in coords[:2]):
        return [(float(coords[0]), float(coords[1]))]
    out = []
    if isinstance(coords, (list, tuple)):
        for c in coords:
            out.extend(_pairs(c))
    return out


def shapes(value) -> list[tuple[str, list]]:
    """(kind, parts) of one wire value: kind point (parts: [(x, y)]), line or polygon (parts: rings)."""
    if not isinstance(value, dict):
        return []
    if "latitude" in value and "longitude" in value:  # a location
        try:
            return [("point", [(float(value["longitude"]), float(value["latitude"]))])]
        except (TypeError, ValueError):
            return []
    kind, coords = value.get("type"), value.get("coordinates")
    if kind == "Point":
        return [("point", _pairs(coords))]
    if kind == "MultiPoint":
        return [("point", _pairs(coords))]
    if kind == "LineString":
        return [("line", [_pairs(coords)])]
    if kind == "MultiLineString":
        return [("line", [_pairs(c) for c in coords or []])]
    if kind == "Polygon":
        return [("polygon", [_pairs(r) for r in coords or []])]
    if kind == "MultiPolygon":
        return [("polygon", [_pairs(r) for p in coords or [] for r in p])]
    return []


def svg_map(values: list, column: str) -> str:
    """An SVG of `values` (one column's wire values); an empty string when none has coordinates."""
    drawn = [s for v in values for s in shapes(v)]
    xy = [p for kind, parts in drawn for part in ([parts] if kind == "point" else parts) for p in part]
    xy = [(x, y) for x, y in xy if math.isfinite(x) and math.isfinite(y)]
    if not xy:
        return ""
    xs, ys = [p[0] for p in xy], [p[1] for p in xy]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    shrink = max(0.1, math.cos(math.radians((y0 + y1) / 2))) if -90 <= y0 <= y1 <= 90 else 1.0
    span_x, span_y = max((x1 - x0) * shrink, 1e-9), max(y1 - y0, 1e-9)
    scale = min((WIDTH - 2 * PAD) / span_x, (HEIGHT - 2 * PAD) / span_y)
    off_x = (WIDTH - span_x * scale) / 2
    off_y = (HEIGHT - span_y * scale) / 2

    def at(x, y) -> str:
        return f"{off_x + (x - x0) * shrink * scale:.1f},{HEIGHT - off_y - (y - y0) * scale:.1f}"

    marks = []
    points = 0
    for kind, parts in drawn:
        if kind == "point":
            for x, y in parts:
                px, py = at(x, y).split(",")
                marks.append(f"<circle cx='{px}' cy='{py}' r='4'><title>{x:g}, {y:g}</title></circle>")
                points += 1
        else:
            d = " ".join(
                "M" + " L".join(at(x, y) for x, y in ring) + (" Z" if kind == "polygon" else "") for ring in parts
            )
            marks.append(f"<path class='{kind}' d='{d}'/>")
    label = (
        f"Map of {len(drawn):,} shapes of column {column} ({points:,} points), "
        f"longitude {x0:g} to {x1:g}, latitude {y0:g} to {y1:g}"
    )
    return (
        f"<svg class='map' role='img' aria-label='{escape(label)}' viewBox='0 0 {WIDTH} {HEIGHT}' "
        f"width='{WIDTH}' height='{HEIGHT}' xmlns='http://www.w3.org/2000/svg'>"
        f"<rect width='{WIDTH}' height='{HEIGHT}' class='sea'/>{''.join(marks)}</svg>"
        f"<p class='muted'>{escape(label)}.</p>"
    )
