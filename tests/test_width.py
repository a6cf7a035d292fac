"""Tests of keras_slim.width: make_divisible, Widths, width_name."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_slim.width import Widths
from keras_slim.width import make_divisible
from keras_slim.width import width_name

LIST = [1.0, 0.75, 0.5, 0.25]


# --------------------------------------------------------------- make_divisible
@pytest.mark.parametrize(
    "value, divisor, expected",
    [
        # int(11.2 + 4) // 8 * 8 = 8 < 0.9 * 11.2 = 10.08, so one more step.
        (11.2, 8, 16),
        # nearest multiple is 8 (and 8 is also the minimum).
        (5.6, 8, 8),
        # int(37.6) // 8 * 8 = 32 >= 30.24: no correction.
        (33.6, 8, 32),
        (48, 8, 48),
        # 19.2 -> 16 < 17.28 -> 24 (the docstring example of Widths).
        (19.2, 8, 24),
        # 27.9 is nearer 24 than 32, but 24 < 25.11 -> 32.
        (27.9, 8, 32),
        (12, 8, 16),  # exactly half way rounds up
        (3, 8, 8),  # never below the divisor
        (0.2, 1, 1),
        (2.5, 1, 3),
        (7.4, 4, 8),
    ],
)
def test_make_divisible_hand_computed(value, divisor, expected):
    result = make_divisible(value, divisor)
    assert result == expected
    assert isinstance(result, int)


def test_make_divisible_min_value():
    # int(3 + 4) // 8 * 8 = 0 -> max(4, 0) = 4, and 4 >= 0.9 * 3.
    assert make_divisible(3, 8, min_value=4) == 4
    assert make_divisible(3, 8) == 8


def test_make_divisible_rejects_bad_divisor():
    with pytest.raises(ValueError, match=r"`divisor` must be an integer >= 1"):
        make_divisible(10, 0)


# ------------------------------------------------------------------ width_name
@pytest.mark.parametrize(
    "width, name",
    [(0.5, "w0.5"), (1.0, "w1"), (1, "w1"), (0.25, "w0.25"), (0.75, "w0.75")],
)
def test_width_name(width, name):
    assert width_name(width) == name


# -------------------------------------------------------------------- channels
@pytest.mark.parametrize(
    "width, expected", [(1.0, 64), (0.75, 48), (0.5, 32), (0.25, 16)]
)
def test_list_channels_divisor_one(width, expected):
    widths = Widths(LIST)
    assert widths.divisor == 1
    assert widths.channels(64, width) == expected


def test_list_channels_plain_rounding():
    widths = Widths(LIST)
    # 10 * 0.25 = 2.5 -> int(3.0) = 3; 10 * 0.75 = 7.5 -> 8.
    assert widths.channels(10, 0.25) == 3
    assert widths.channels(10, 0.75) == 8
    # never fewer than one channel
    assert widths.channels(1, 0.25) == 1
    # default width is the largest
    assert widths.channels(10) == 10


@pytest.mark.parametrize(
    "width, expected",
    [(1.0, 64), (0.9, 56), (0.5, 32), (0.3, 24), (0.25, 16)],
)
def test_range_channels_divisor_eight(width, expected):
    widths = Widths(min_width=0.25, max_width=1.0)
    assert widths.divisor == 8
    assert widths.channels(64, width) == expected


def test_range_channels_with_explicit_divisor():
    widths = Widths(min_width=0.25, max_width=1.0, divisor=4)
    # 64 * 0.3 = 19.2 -> int(21.2) // 4 * 4 = 20.
    assert widths.channels(64, 0.3) == 20
    # 100 * 0.5 = 50 -> 52 with divisor 4, 48 with divisor 8.
    assert widths.channels(100, 0.5) == 52
    assert Widths(min_width=0.25, max_width=1.0).channels(100, 0.5) == 48


def test_channels_capped_at_full_count():
    widths = Widths(min_width=0.25, max_width=1.0)
    # 12 * 0.99 = 11.88 rounds to 16 > 12: capped.
    assert widths.channels(12, 0.99) == 12
    # 4 * 0.3 = 1.2 -> at least the divisor 8 > 4: capped.
    assert widths.channels(4, 0.3) == 4
    # the full width keeps a count that is not a multiple of the divisor
    assert widths.channels(3, 1.0) == 3


def test_channels_list_with_largest_width_below_one():
    widths = Widths([0.5, 0.25])
    assert widths.channels(64, 0.5) == 32
    assert widths.channels(64) == 32
    assert widths.channels(64, 0.25) == 16


@pytest.mark.parametrize("width", LIST)
def test_channels_expansion_follows_input_rounding(width):
    widths = Widths(LIST, divisor=8)
    expected = 6 * widths.channels(24, width)
    assert widths.channels(144, width, expansion=6) == expected


def test_channels_expansion_hand_computed():
    widths = Widths(LIST, divisor=8)
    # 24 * 0.5 = 12 -> 16; 6 * 16 = 96 (plain rounding of 72 would give 72).
    assert widths.channels(144, 0.5, expansion=6) == 96
    assert widths.channels(144, 0.5) == 72
    # 24 * 0.25 = 6 -> 8; 6 * 8 = 48.
    assert widths.channels(144, 0.25, expansion=6) == 48


def test_channels_expansion_not_a_multiple():
    with pytest.raises(ValueError, match=r"145 channels are not a multiple"):
        Widths(LIST).channels(145, 0.5, expansion=6)


# -------------------------------------------------------------------- validate
def test_validate_returns_canonical_value():
    widths = Widths(LIST)
    assert widths.validate(0.5000000001) == 0.5
    assert widths.validate(0.4999999999) == 0.5
    assert widths.validate(0.75) == 0.75
    assert widths.validate(1) == 1.0
    assert isinstance(widths.validate(1), float)
    assert widths.validate(None) == 1.0
    assert widths.validate(np.float64(0.25)) == 0.25


def test_validate_range_clamps_to_bounds():
    widths = Widths(min_width=0.25, max_width=1.0)
    assert widths.validate(0.6) == 0.6
    assert widths.validate(1.0000000001) == 1.0
    assert widths.validate(0.2499999999) == 0.25
    assert widths.validate(None) == 1.0


# ---------------------------------------------------------------------- errors
def test_error_empty_list():
    with pytest.raises(ValueError, match=r"width list is empty"):
        Widths([])


def test_error_ascending_list():
    with pytest.raises(
        ValueError, match=r"sorted from largest to smallest.*\[0\.25, 0\.5, 1\.0\]"
    ):
        Widths([0.25, 0.5, 1.0])


def test_error_duplicates():
    with pytest.raises(ValueError, match=r"without repeats"):
        Widths([1.0, 0.5, 0.5])


@pytest.mark.parametrize(
    "values, shown",
    [([1.0, 0.0], "0.0"), ([1.5, 1.0], "1.5"), ([1.0, -0.5], "-0.5")],
)
def test_error_width_out_of_unit_interval(values, shown):
    with pytest.raises(ValueError, match=rf"must be in \(0, 1\], got {shown}"):
        Widths(values)


def test_error_nan_in_list():
    with pytest.raises(ValueError, match=r"must be in \(0, 1\], got nan"):
        Widths([1.0, float("nan")])


def test_error_nan_range_bound():
    with pytest.raises(ValueError, match=r"must be in \(0, 1\], got nan"):
        Widths(min_width=float("nan"), max_width=1.0)


def test_error_nan_width_list_validate():
    with pytest.raises(ValueError, match=r"Width nan is not one of"):
        Widths(LIST).validate(float("nan"))


def test_error_nan_width_range_validate():
    # A NaN width must be refused like any other width outside the range;
    # it must not be returned as a width.
    widths = Widths(min_width=0.25, max_width=1.0)
    with pytest.raises(ValueError, match=r"[Ww]idth nan"):
        widths.validate(float("nan"))


def test_error_inf_width_range_validate():
    widths = Widths(min_width=0.25, max_width=1.0)
    with pytest.raises(ValueError, match=r"outside this network's range"):
        widths.validate(float("inf"))


def test_error_width_not_in_list():
    with pytest.raises(
        ValueError,
        match=r"Width 0\.6 is not one of this network's widths "
        r"\[1\.0, 0\.75, 0\.5, 0\.25\]",
    ):
        Widths(LIST).validate(0.6)


@pytest.mark.parametrize("width", [0.1, 1.5])
def test_error_width_outside_range(width):
    widths = Widths(min_width=0.25, max_width=1.0)
    with pytest.raises(
        ValueError,
        match=rf"Width {width:g} is outside this network's range \[0\.25, 1\]",
    ):
        widths.validate(width)


@pytest.mark.parametrize("lo, hi", [(0.5, 0.5), (0.75, 0.5)])
def test_error_min_not_below_max(lo, hi):
    with pytest.raises(ValueError, match=r"`min_width` .* must be smaller"):
        Widths(min_width=lo, max_width=hi)


def test_error_range_needs_both_bounds():
    with pytest.raises(ValueError, match=r"needs both `min_width` and"):
        Widths(min_width=0.25)


def test_error_list_and_range():
    with pytest.raises(ValueError, match=r"not both"):
        Widths([1.0, 0.5], min_width=0.25, max_width=1.0)


def test_error_neither_list_nor_range():
    with pytest.raises(ValueError, match=r"No widths given"):
        Widths()


def test_error_non_numeric_list():
    with pytest.raises(ValueError, match=r"must be a list of numbers"):
        Widths(["a", "b"])


@pytest.mark.parametrize(
    "bad", [tf.constant(0.5), "0.5", True], ids=["tensor", "str", "bool"]
)
@pytest.mark.parametrize("kind", ["list", "range"])
def test_error_width_not_a_python_number(bad, kind):
    widths = (
        Widths(LIST) if kind == "list" else Widths(min_width=0.25, max_width=1.0)
    )
    with pytest.raises(ValueError, match=r"must be a Python number"):
        widths.validate(bad)


def test_error_tensor_message_mentions_tensors():
    with pytest.raises(ValueError, match=r"tensors are not accepted"):
        Widths(LIST).validate(tf.constant(0.5))


def test_error_bad_divisor():
    with pytest.raises(ValueError, match=r"`divisor` must be >= 1, got 0"):
        Widths(LIST, divisor=0)


def test_error_stat_widths_with_list():
    with pytest.raises(ValueError, match=r"`stat_widths` is for a width range"):
        Widths(LIST, stat_widths=[1.0])


def test_error_stat_widths_unsorted():
    with pytest.raises(ValueError, match=r"`stat_widths` must be sorted"):
        Widths(min_width=0.25, max_width=1.0, stat_widths=[0.5, 1.0])


def test_error_stat_widths_outside_range():
    with pytest.raises(ValueError, match=r"Width 0\.1 is outside"):
        Widths(min_width=0.25, max_width=1.0, stat_widths=[1.0, 0.1])


def test_error_stat_widths_empty():
    with pytest.raises(ValueError, match=r"`stat_widths` must not be empty"):
        Widths(min_width=0.25, max_width=1.0, stat_widths=[])


# ------------------------------------------------------------------ stat_index
def test_stat_index_list():
    widths = Widths(LIST)
    assert [widths.stat_index(w) for w in LIST] == [0, 1, 2, 3]
    assert widths.stat_index(0.5000000001) == 2


def test_stat_index_range():
    widths = Widths(min_width=0.25, max_width=1.0, stat_widths=[1.0, 0.5, 0.25])
    assert widths.stat_index(1.0) == 0
    assert widths.stat_index(0.5) == 1
    assert widths.stat_index(0.25) == 2
    with pytest.raises(
        ValueError,
        match=r"Width 0\.75 has no stored BatchNorm statistics.*"
        r"\[1\.0, 0\.5, 0\.25\]",
    ):
        widths.stat_index(0.75)


def test_stat_index_outside_range():
    widths = Widths(min_width=0.25, max_width=1.0)
    with pytest.raises(ValueError, match=r"outside this network's range"):
        widths.stat_index(0.1)


# --------------------------------------------------------- default stat widths
@pytest.mark.parametrize("lo, hi", [(0.25, 1.0), (0.35, 0.9)])
def test_default_stat_widths_evenly_spaced(lo, hi):
    widths = Widths(min_width=lo, max_width=hi)
    assert len(widths.stat_widths) == 8
    assert len(widths) == 8
    assert widths.stat_widths[0] == hi
    assert widths.stat_widths[-1] == lo
    np.testing.assert_allclose(
        widths.stat_widths, np.linspace(hi, lo, 8), atol=1e-4, rtol=0
    )
    assert all(a > b for a, b in zip(widths.stat_widths, widths.stat_widths[1:]))
    # every default stat width holds statistics
    assert [widths.stat_index(w) for w in widths.stat_widths] == list(range(8))


def test_default_stat_widths_hand_values():
    widths = Widths(min_width=0.25, max_width=1.0)
    # step 0.75 / 7, rounded to 4 decimals
    assert widths.stat_widths == (
        1.0, 0.8929, 0.7857, 0.6786, 0.5714, 0.4643, 0.3571, 0.25
    )


def test_default_stat_widths_narrow_range_has_no_repeats():
    # Explicit stat_widths must be strictly decreasing; the default ones must
    # follow the same rule even for a narrow range.
    widths = Widths(min_width=0.9996, max_width=1.0)
    stat = widths.stat_widths
    assert all(a > b for a, b in zip(stat, stat[1:])), stat


def test_iteration_and_len_of_list():
    widths = Widths(LIST)
    assert list(widths) == LIST
    assert len(widths) == 4
    assert widths.largest == 1.0 and widths.smallest == 0.25
    assert not widths.is_range


# --------------------------------------------------------------- serialization
def test_config_round_trip_list():
    widths = Widths(LIST, divisor=8)
    config = widths.get_config()
    assert config == {"values": LIST, "divisor": 8}
    restored = Widths.from_config(config)
    assert restored == widths
    assert restored.values == widths.values
    assert restored.channels(144, 0.5, expansion=6) == 96


def test_config_round_trip_range():
    widths = Widths(
        min_width=0.25, max_width=1.0, divisor=4, stat_widths=[1.0, 0.5, 0.25]
    )
    config = widths.get_config()
    assert config == {
        "min_width": 0.25,
        "max_width": 1.0,
        "divisor": 4,
        "stat_widths": [1.0, 0.5, 0.25],
    }
    restored = Widths.from_config(config)
    assert restored == widths
    assert restored.is_range
    assert restored.stat_widths == (1.0, 0.5, 0.25)


def test_config_round_trip_default_stat_widths():
    widths = Widths(min_width=0.25, max_width=1.0)
    restored = Widths.from_config(widths.get_config())
    assert restored == widths
    assert restored.stat_widths == widths.stat_widths


def test_keras_serialization_round_trip():
    widths = Widths(min_width=0.25, max_width=1.0, stat_widths=[1.0, 0.5])
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(widths)
    )
    assert isinstance(restored, Widths)
    assert restored == widths


def test_equality():
    assert Widths([1.0, 0.5]) == Widths([1, 0.5])
    assert Widths([1.0, 0.5]) != Widths([1.0, 0.25])
    assert Widths([1.0, 0.5]) != Widths([1.0, 0.5], divisor=8)
    assert Widths([1.0, 0.25]) != Widths(min_width=0.25, max_width=1.0)
    assert Widths([1.0, 0.5]) != [1.0, 0.5]


# ---------------------------------------------------------------------- coerce
def test_coerce_list_and_tuple():
    coerced = Widths.coerce([1.0, 0.5])
    assert isinstance(coerced, Widths)
    assert coerced == Widths([1.0, 0.5])
    assert Widths.coerce((1.0, 0.5)) == Widths([1.0, 0.5])


def test_coerce_dict():
    config = {"min_width": 0.25, "max_width": 1.0, "stat_widths": [1.0, 0.5]}
    coerced = Widths.coerce(config)
    assert coerced.is_range
    assert coerced == Widths(min_width=0.25, max_width=1.0, stat_widths=[1.0, 0.5])
    assert Widths.coerce({"values": [1.0, 0.5], "divisor": 1}) == Widths([1.0, 0.5])


def test_coerce_widths_is_identity():
    widths = Widths(LIST)
    assert Widths.coerce(widths) is widths


def test_coerce_single_number():
    assert Widths.coerce(0.5) == Widths([0.5])


def test_coerce_none():
    with pytest.raises(ValueError, match=r"`widths` is required"):
        Widths.coerce(None)


def test_coerce_invalid_list_propagates_error():
    with pytest.raises(ValueError, match=r"sorted from largest to smallest"):
        Widths.coerce([0.5, 1.0])


def test_range_channels_on_grid():
    # every width of the range keeps a multiple of the divisor, monotonically
    widths = Widths(min_width=0.25, max_width=1.0)
    counts = [widths.channels(64, float(w)) for w in np.linspace(0.25, 1.0, 13)]
    assert all(c % 8 == 0 and 16 <= c <= 64 for c in counts), counts
    assert counts == sorted(counts)
    assert counts[0] == 16 and counts[-1] == 64
