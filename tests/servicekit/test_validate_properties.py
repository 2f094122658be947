"""Property tests of the validators: every input gives a clean value or ValidationFailed
(or NotFound / InvalidJson where the contract says so), never another exception."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from invoices.handlers import TOTAL_MAX_CENTS
from orders.handlers import QUANTITY_MAX, VALUE_MAX_CENTS
from servicekit import jsonio, validate
from servicekit.errors import InvalidJson, NotFound, ValidationFailed

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    | st.decimals(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8)
EXAMPLES = settings(max_examples=300, deadline=None)


@EXAMPLES
@given(st.integers(min_value=1, max_value=QUANTITY_MAX))
def test_every_quantity_in_bounds_is_accepted(quantity: int) -> None:
    assert validate.int_field({"q": quantity}, "q", 1, QUANTITY_MAX) == quantity


@EXAMPLES
@given(JSON_VALUES)
def test_a_quantity_is_an_int_in_bounds_or_refused(value: object) -> None:
    try:
        quantity = validate.int_field({"q": value}, "q", 1, QUANTITY_MAX)
    except ValidationFailed as exc:
        assert "q" in exc.message
    else:
        assert type(quantity) is int and 1 <= quantity <= QUANTITY_MAX


@EXAMPLES
@given(st.integers(min_value=1, max_value=VALUE_MAX_CENTS))
def test_every_amount_in_cents_round_trips_exactly(cents: int) -> None:
    amount = validate.cents_to_decimal(cents)
    parsed = jsonio.loads(jsonio.dumps({"v": amount}).encode())
    assert validate.cents_field(parsed, "v", 1, VALUE_MAX_CENTS, False) == cents


@EXAMPLES
@given(JSON_VALUES)
def test_an_amount_is_whole_cents_in_bounds_or_refused(value: object) -> None:
    try:
        cents = validate.cents_field({"v": value}, "v", 0, TOTAL_MAX_CENTS, True)
    except ValidationFailed as exc:
        assert "v" in exc.message
    else:
        assert 0 <= cents <= TOTAL_MAX_CENTS
        assert Decimal(value) * 100 == cents  # type: ignore[arg-type]


@EXAMPLES
@given(st.integers(min_value=1, max_value=QUANTITY_MAX),
       st.integers(min_value=1, max_value=VALUE_MAX_CENTS))
def test_totals_are_exact_up_to_ten_to_the_fifteen(quantity: int, cents: int) -> None:
    total = validate.cents_to_decimal(quantity * cents)
    assert total == quantity * validate.cents_to_decimal(cents)
    assert total <= 10**15


@EXAMPLES
@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31),
                    timezones=st.just(timezone.utc)),
       st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_timestamps_in_any_offset_round_trip(moment: datetime, offset_minutes: int) -> None:
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    text = local.isoformat()
    micros = validate.timestamp_field({"t": text}, "t")
    assert validate.timestamp_field({"t": validate.format_micros(micros)}, "t") == micros
    assert validate.format_micros(micros).endswith("Z")  # type: ignore[union-attr]


@EXAMPLES
@given(JSON_VALUES)
def test_a_timestamp_is_rfc3339_or_refused(value: object) -> None:
    try:
        validate.timestamp_field({"t": value}, "t")
    except ValidationFailed as exc:
        assert "t" in exc.message


@EXAMPLES
@given(st.text(max_size=60) | st.uuids().map(str) | st.uuids().map(lambda u: str(u).upper()))
def test_a_path_id_is_a_lowercase_uuid_or_not_found(text: str) -> None:
    try:
        found = validate.path_id(text)
    except NotFound:
        return
    assert str(uuid.UUID(found)) == found


@EXAMPLES
@given(st.binary(max_size=200) | JSON_VALUES.map(lambda v: jsonio.dumps(v).encode()))
def test_a_body_is_json_or_invalid_json(raw: bytes) -> None:
    try:
        jsonio.loads(raw)
    except InvalidJson:
        pass
