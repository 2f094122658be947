"""JSON in and out: money stays exact, and nothing odd gets through as a number."""

from __future__ import annotations

from decimal import Decimal

import pytest

from servicekit import jsonio, validate
from servicekit.errors import InvalidJson, ValidationFailed


def test_decimals_are_read_and_written_digit_for_digit() -> None:
    body = jsonio.loads(b'{"value": 0.1, "total": 999999999999999.99}')
    assert body == {"value": Decimal("0.1"), "total": Decimal("999999999999999.99")}
    assert jsonio.dumps({"total": Decimal("0.30"), "n": [1, None, "é/"]}) == \
        '{"total":0.3,"n":[1,null,"é/"]}'
    assert jsonio.dumps(Decimal(10**15)) == "1000000000000000"
    assert jsonio.dumps(validate.cents_to_decimal(3 * 10)) == "0.3"


@pytest.mark.parametrize("raw", [b"NaN", b"Infinity", b"-Infinity", b"{", b"\xff"])
def test_what_is_not_json_is_invalid_json(raw: bytes) -> None:
    with pytest.raises(InvalidJson):
        jsonio.loads(raw)


@pytest.mark.parametrize("value, cents", [
    (1, 100), (Decimal("0.1"), 10), (Decimal("1e2"), 10_000), (Decimal("12.30"), 1230)])
def test_amounts_become_integer_cents(value: object, cents: int) -> None:
    assert validate.cents_field({"v": value}, "v", 0, 10**17, allow_zero=True) == cents


@pytest.mark.parametrize("value", [Decimal("0.001"), Decimal("1e-3"), Decimal("1e400"),
                                   True, "1", 1.5, None])
def test_amounts_that_are_not_exact_cents_are_refused(value: object) -> None:
    with pytest.raises(ValidationFailed):
        validate.cents_field({"v": value}, "v", 0, 10**17, allow_zero=True)


@pytest.mark.parametrize("text, micros", [
    ("1970-01-01T00:00:00Z", 0), ("1970-01-01T00:00:01.5Z", 1_500_000),
    ("1970-01-01T01:00:00+01:00", 0), ("1970-01-01t00:00:00.000001z", 1)])
def test_timestamps_are_rfc3339_in_any_offset(text: str, micros: int) -> None:
    assert validate.timestamp_field({"t": text}, "t") == micros


def test_timestamps_are_written_in_utc_with_z() -> None:
    assert validate.format_micros(1_500_000) == "1970-01-01T00:00:01.5Z"
    assert validate.format_micros(0) == "1970-01-01T00:00:00Z"
    assert validate.format_micros(None) is None
