"""ECharts option objects built on the server (``static/patron/charts.js`` only draws them).

Keeping the options here means a page's chart is plain data that tests can read, and no chart
logic is spread over templates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PALETTE = ["#1d4ed8", "#047857", "#b45309", "#b91c1c", "#6d28d9", "#0e7490", "#6b7280"]


def _base(title: str = "") -> dict[str, Any]:
    option: dict[str, Any] = {
        "color": PALETTE,
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 48, "right": 48, "top": 36, "bottom": 32, "containLabel": True},
        "animation": False,
    }
    if title:
        option["title"] = {"text": title, "textStyle": {"fontSize": 13}}
    return option


def line(
    x: Sequence[Any],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    title: str = "",
    y_name: str = "",
    right: Sequence[tuple[str, Sequence[float | None]]] = (),
    right_name: str = "",
    y_min: float | None = None,
    y_max: float | None = None,
) -> dict[str, Any]:
    """Lines over a category axis; ``right`` series use a second y axis."""
    option = _base(title)
    option["legend"] = {"top": 0, "right": 0}
    option["xAxis"] = {"type": "category", "data": list(x), "boundaryGap": False}
    left_axis: dict[str, Any] = {"type": "value", "name": y_name, "scale": True}
    if y_min is not None:
        left_axis["min"] = y_min
    if y_max is not None:
        left_axis["max"] = y_max
    option["yAxis"] = [left_axis]
    if right:
        option["yAxis"].append({"type": "value", "name": right_name, "scale": True})
    option["series"] = [
        {"name": name, "type": "line", "data": list(values), "showSymbol": True}
        for name, values in series
    ] + [
        {"name": name, "type": "line", "yAxisIndex": 1, "data": list(values), "showSymbol": True}
        for name, values in right
    ]
    return option


def bars(
    categories: Sequence[Any],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    title: str = "",
    y_name: str = "",
    stacked: bool = False,
) -> dict[str, Any]:
    option = _base(title)
    option["legend"] = {"top": 0, "right": 0}
    option["xAxis"] = {"type": "category", "data": list(categories)}
    option["yAxis"] = {"type": "value", "name": y_name}
    option["series"] = [
        {"name": name, "type": "bar", "data": list(values), **({"stack": "all"} if stacked else {})}
        for name, values in series
    ]
    return option


def bars_with_intervals(
    categories: Sequence[str],
    values: Sequence[float | None],
    intervals: Sequence[tuple[float, float] | None],
    *,
    title: str = "",
    y_name: str = "",
    name: str = "",
    interval_name: str = "95 %",
) -> dict[str, Any]:
    """One bar per category with a whisker from ``low`` to ``high`` (a boxplot series whose
    box is flat at the value: plain data, no drawing code in the browser)."""
    option = _base(title)
    option["tooltip"] = {"trigger": "item"}
    option["legend"] = {"top": 0, "right": 0}
    option["xAxis"] = {"type": "category", "data": list(categories)}
    option["yAxis"] = {"type": "value", "name": y_name, "scale": False}
    option["series"] = [
        {"name": name, "type": "bar", "data": list(values), "barMaxWidth": 56},
        {
            "name": interval_name,
            "type": "boxplot",
            "data": [
                [low, value, value, value, high]
                if bounds is not None and value is not None
                else [None, None, None, None, None]
                for value, bounds in zip(values, intervals, strict=True)
                for low, high in [bounds or (None, None)]
            ],
            "itemStyle": {"color": "transparent", "borderColor": "#111827"},
            "boxWidth": [2, 2],
            "z": 3,
        },
    ]
    return option


def heatmap(
    rows: Sequence[str],
    columns: Sequence[str],
    values: Sequence[Sequence[float]],
    *,
    title: str = "",
) -> dict[str, Any]:
    """A matrix (e.g. grade moves: rows = before, columns = after)."""
    cells = [[j, i, values[i][j]] for i in range(len(rows)) for j in range(len(columns))]
    highest = max((v for row in values for v in row), default=0)
    option = _base(title)
    option["tooltip"] = {"position": "top"}
    option["xAxis"] = {"type": "category", "data": list(columns), "splitArea": {"show": True}}
    option["yAxis"] = {"type": "category", "data": list(rows), "splitArea": {"show": True}}
    option["visualMap"] = {
        "min": 0,
        "max": highest or 1,
        "calculable": False,
        "orient": "horizontal",
        "left": "center",
        "bottom": 0,
        "show": False,
    }
    option["series"] = [
        {"type": "heatmap", "data": cells, "label": {"show": True}, "emphasis": {"disabled": True}}
    ]
    return option


def matrix(
    rows: Sequence[str],
    columns: Sequence[str],
    values: Sequence[Sequence[float | None]],
    *,
    title: str = "",
    suffix: str = "",
    highest: float | None = None,
) -> dict[str, Any]:
    """A heatmap whose missing cells (``None``) stay blank, e.g. a cohort triangle; each cell
    is labelled with its value and ``suffix`` (``" %"``). Rows run top to bottom."""
    present = [
        (j, i, value)
        for i in range(len(rows))
        for j in range(len(columns))
        if (value := values[i][j]) is not None
    ]
    cells = [[j, i, value] for j, i, value in present]
    if highest is None:
        highest = max((value for _, _, value in present), default=0)
    option = _base(title)
    option["tooltip"] = {"position": "top"}
    option["grid"] = {**option["grid"], "bottom": 8}
    option["xAxis"] = {"type": "category", "data": list(columns), "splitArea": {"show": True}}
    option["yAxis"] = {
        "type": "category",
        "data": list(rows),
        "splitArea": {"show": True},
        "inverse": True,
    }
    option["visualMap"] = {
        "min": 0,
        "max": highest or 1,
        "show": False,
        "inRange": {"color": ["#eef2ff", "#93c5fd", "#3b82f6"]},
    }
    option["series"] = [
        {
            "type": "heatmap",
            "data": cells,
            "label": {"show": True, "formatter": "{@[2]}" + suffix, "fontSize": 10},
            "emphasis": {"disabled": True},
        }
    ]
    return option


def with_drill(
    option: dict[str, Any], url: str, series: Sequence[dict[str, Any] | None]
) -> dict[str, Any]:
    """Make the chart's points links: a click on point ``i`` of series ``s`` opens ``url``
    with each ``{name}`` replaced by ``series[s][name]`` (a list gives the point's own value,
    ``[i]``; anything else is used for every point). A series given ``None``, or a point whose
    value is ``None``, does not link. ``charts.js`` reads this and takes it out of the option."""
    option["drill"] = {"url": url, "series": list(series)}
    return option
