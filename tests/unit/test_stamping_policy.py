"""Retry policy: exponential backoff with jitter, slow bounded retries after a rejection."""

from __future__ import annotations

import random

import pytest

from service.errors import ConfigError
from service.settings import load_settings
from service.usecases.stamping.policy import RetryPolicy, fill_poll_s


def test_backoff_doubles_within_jitter_and_is_capped() -> None:
    policy = RetryPolicy(retry_base_s=2, retry_max_s=60)
    rng = random.Random(7)
    for attempts, ceiling in [(1, 2), (2, 4), (3, 8), (6, 60), (40, 60)]:
        delay = policy.retry_delay(attempts, rejected=False, rng=rng)
        assert delay is not None
        assert ceiling / 2 <= delay.total_seconds() <= ceiling


def test_jitter_spreads_workers_that_failed_together() -> None:
    policy = RetryPolicy()
    delays = {policy.retry_delay(4, rejected=False, rng=random.Random(seed)) for seed in range(20)}
    assert len(delays) == 20


def test_rejections_are_retried_slowly_a_few_times_then_given_up() -> None:
    policy = RetryPolicy(rejected_retry_s=900, rejected_max_attempts=3)
    for attempts in (1, 2):
        delay = policy.retry_delay(attempts, rejected=True)
        assert delay is not None and 810 <= delay.total_seconds() <= 990
    assert policy.retry_delay(3, rejected=True) is None


def test_settings_override_the_policy_and_bad_values_are_refused() -> None:
    settings = load_settings(env={"CHRONOSEAL_TSA_RETRY_BASE_S": "0.2",
                                  "CHRONOSEAL_TSA_REJECTED_MAX_ATTEMPTS": "5"})
    policy = RetryPolicy.from_settings(settings)
    assert policy.retry_base_s == 0.2 and policy.rejected_max_attempts == 5
    assert RetryPolicy.from_settings(load_settings(env={})) == RetryPolicy()
    with pytest.raises(ConfigError):
        load_settings(env={"CHRONOSEAL_TSA_RETRY_MAX_S": "soon"})
    with pytest.raises(ConfigError):
        load_settings(env={"CHRONOSEAL_BATCH_LEASE_MARGIN_S": "-1"})


def test_lease_outlasts_the_slowest_tsa() -> None:
    assert RetryPolicy(lease_margin_s=30).lease_s([7.0, 35.0]) == 65.0


def test_fill_poll_is_bounded() -> None:
    assert fill_poll_s(0) == 0.01 and fill_poll_s(200) == 0.05 and fill_poll_s(10_000) == 0.1
