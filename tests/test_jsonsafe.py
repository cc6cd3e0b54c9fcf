"""``_jsonsafe``: the one conversion of user data to JSON values, and text that always encodes."""

from __future__ import annotations

import datetime
import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_embed._jsonsafe import dumps, jsonable, plain


def test_user_data_becomes_json_values() -> None:
    value = {
        "when": datetime.date(2026, 1, 2),
        "at": datetime.datetime(2026, 1, 2, 3, 4, 5),
        "raw": b"\x00\xff",
        "nan": math.nan,
        "inf": -math.inf,
        7: (1, 2.5, None),
        True: "yes",
        None: object,
    }
    assert jsonable(value) == {
        "when": "2026-01-02",
        "at": "2026-01-02T03:04:05",
        "raw": "AP8=",
        "nan": None,
        "inf": None,
        "7": [1, 2.5, None],
        "true": "yes",
        "null": "<class 'object'>",
    }


def test_a_value_that_contains_itself_or_nests_too_deep_is_refused() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="contains itself"):
        jsonable({"a": loop})
    deep: list[object] = []
    for _ in range(200):
        deep = [deep]
    with pytest.raises(ValueError, match="nests deeper than 64 levels"):
        jsonable(deep)
    shared = [1]
    assert jsonable([shared, shared]) == [[1], [1]]  # shared, not a cycle


json_leaves = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
)
json_values = st.recursive(
    json_leaves, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=20
)


@given(json_values)
def test_json_values_pass_unchanged_and_always_encode(value: object) -> None:
    assert jsonable(value) == value
    json.loads(dumps(jsonable(value)))


def test_plain_makes_any_value_strict_json_that_encodes() -> None:
    loop: list[Any] = []
    loop.append(loop)
    deep: Any = 0
    for _ in range(200):
        deep = [deep]
    value = plain(
        {"a\ud800": "b\udfff", "loop": loop, "deep": deep, "set": {1}, "inf": float("inf"), 1: None}
    )
    text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")  # encodes: no lone surrogate left
    assert value["a\\ud800"] == "b\\udfff" and value["loop"] == ["<cycle>"] and value["set"] == "{1}"
    assert value["inf"] == "inf" and value["1"] is None and "<too deep>" in text
    assert plain({"ok": [1, "x"]}) == {"ok": [1, "x"]}
