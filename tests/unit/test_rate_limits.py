"""Rate-limit settings parse as written and print back the same; addresses are counted as
IPv4 hosts or IPv6 /64 prefixes."""

from __future__ import annotations

import pytest

from service.errors import ConfigError
from service.settings import SETTINGS, Rate, load_settings
from service.usecases.rate_limits import address_subject


@pytest.mark.parametrize(("text", "rate"), [
    ("100/minute", Rate(100, 60)), ("30/10 seconds", Rate(30, 10)), ("5/second", Rate(5, 1)),
    ("2/hours", Rate(2, 3600)), ("1 / 2 hours", Rate(1, 7200)), ("9/DAY", Rate(9, 86400)),
    ("off", None), ("", None),
])
def test_rates_parse_and_print_back(text: str, rate: Rate | None) -> None:
    env = {"CHRONOSEAL_RATE_LIMIT_SEARCH_PER_ADDRESS": text}
    parsed = load_settings(env=env).rate_limit_search_per_address
    assert parsed == rate
    if rate is not None:
        assert load_settings(env={**env, "CHRONOSEAL_RATE_LIMIT_SEARCH_PER_ADDRESS": str(rate)}
                             ).rate_limit_search_per_address == rate


@pytest.mark.parametrize("text", ["100", "lots/minute", "0/minute", "5/fortnight", "5/2 days",
                                  "5/0 seconds", "-1/second"])
def test_bad_rates_name_the_setting(text: str) -> None:
    with pytest.raises(ConfigError, match="rate_limit_verify_per_key in env"):
        load_settings(env={"CHRONOSEAL_RATE_LIMIT_VERIFY_PER_KEY": text})


def test_every_rate_limit_has_a_default() -> None:
    names = [s.name for s in SETTINGS if s.name.startswith("rate_limit_")]
    assert len(names) == 9
    assert all(isinstance(s.default, Rate) for s in SETTINGS if s.name in names)


@pytest.mark.parametrize(("address", "subject"), [
    ("192.0.2.1", "192.0.2.1"), ("2001:db8::1", "2001:db8::/64"),
    ("2001:db8::ffff:1", "2001:db8::/64"), ("2001:db8:0:1::1", "2001:db8:0:1::/64"),
    ("::ffff:192.0.2.1", "192.0.2.1"), (None, "unknown"), ("not-an-address", "unknown"),
])
def test_addresses_are_counted_as_hosts_or_ipv6_prefixes(address: str | None,
                                                         subject: str) -> None:
    assert address_subject(address) == subject
