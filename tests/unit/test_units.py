import pytest

from ansible_collections.testbed.containers.plugins.module_utils.units import (
    format_loss,
    format_rate,
    format_time,
    parse_loss,
    parse_rate,
    parse_time,
)


@pytest.mark.parametrize("text, bits", [
    ("10mbit", 10_000_000),
    ("100kbit", 100_000),
    ("1gbit", 1_000_000_000),
    ("500bit", 500),
    ("2.5mbit", 2_500_000),
    ("10Mbit", 10_000_000),
    ("10MBIT", 10_000_000),
    ("10Mbit/s", 10_000_000),
    ("100kbit/s", 100_000),
    ("500bit/s", 500),
    ("1 gbit", 1_000_000_000),
    ("1mibit", 1_048_576),
    ("1000000", 1_000_000),
    (1000000, 1_000_000),
    (2.5e6, 2_500_000),
])
def test_parse_rate_reads_bits_per_second_in_tc_units(text, bits):
    assert parse_rate(text) == bits


@pytest.mark.parametrize("text, bits", [
    ("2mbps", 16_000_000),      # tc: bps is bytes per second
    ("1kbps", 8_000),
    ("100bps", 800),
    ("1gbps", 8_000_000_000),
])
def test_parse_rate_reads_bps_as_bytes_per_second_like_tc(text, bits):
    assert parse_rate(text) == bits


@pytest.mark.parametrize("bad", ["", "fast", "10 parsecs", "-5mbit", "0mbit", "10mbit/h", "mbit", 0, -1, True,
                                 None, [10], "10mbps/s"])
def test_parse_rate_rejects_with_the_accepted_forms(bad):
    with pytest.raises(ValueError) as err:
        parse_rate(bad)
    assert "10mbit" in str(err.value) and "kbit" in str(err.value) and "bytes" in str(err.value)


@pytest.mark.parametrize("text, micros", [
    ("5ms", 5000),
    ("100us", 100),
    ("1s", 1_000_000),
    ("2.5ms", 2500),
    ("0.5s", 500_000),
    ("20msec", 20_000),
    ("3usecs", 3),
    ("2sec", 2_000_000),
    (0, 0),
    ("0", 0),
])
def test_parse_time_gives_microseconds(text, micros):
    assert parse_time(text) == micros


@pytest.mark.parametrize("bad", ["5", 5, "5 minutes", "ms", "-1ms", "0.5us", "1h", None, 2.5])
def test_parse_time_rejects_numbers_without_unit_and_unknown_units(bad):
    with pytest.raises(ValueError) as err:
        parse_time(bad)
    assert "5ms" in str(err.value) and "us" in str(err.value)


@pytest.mark.parametrize("value, probability", [
    (0.01, 0.01),
    ("0.01", 0.01),
    ("1%", 0.01),
    ("0.5 %", 0.005),
    ("100%", 1.0),
    (0, 0.0),
    (1, 1.0),
])
def test_parse_loss_gives_a_probability(value, probability):
    assert parse_loss(value) == pytest.approx(probability)


@pytest.mark.parametrize("bad", [1.5, -0.1, "150%", "-1%", "lots", "1%%", None, float("nan")])
def test_parse_loss_rejects_out_of_range_and_garbage(bad):
    with pytest.raises(ValueError) as err:
        parse_loss(bad)
    assert "between 0 and 1" in str(err.value) and "%" in str(err.value)


@pytest.mark.parametrize("bits, text", [
    (10_000_000, "10mbit"),
    (1_500_000, "1500kbit"),
    (1_000_000_000, "1gbit"),
    (500, "500bit"),
    (16_000_000, "16mbit"),
])
def test_format_rate_is_exact_and_parses_back(bits, text):
    assert format_rate(bits) == text
    assert parse_rate(format_rate(bits)) == bits


def test_format_time_and_loss():
    assert [format_time(t) for t in (5000, 2500, 1_000_000, 7)] == ["5ms", "2500us", "1s", "7us"]
    assert format_loss(0.01) == "1%"
    assert format_loss(0.001) == "0.1%"
    assert parse_loss(format_loss(0.125)) == 0.125
