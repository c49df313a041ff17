"""Pure rules: event filters, backoff, the address policy, signing, settings."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress

import pytest

from leadflow_webhooks.backoff import retry_delay
from leadflow_webhooks.event_filter import is_known_pattern, subscribes_to
from leadflow_webhooks.settings import STANDARD_RETRY_SCHEDULE_S, WebhooksSettings
from leadflow_webhooks.signing import new_secret, sign
from leadflow_webhooks.target_policy import (
    TargetPolicy,
    is_public_address,
    literal_address,
    url_problem,
)

STRICT = TargetPolicy()


def test_patterns_match_exact_types_prefixes_and_everything() -> None:
    assert subscribes_to(["lead.captured"], "lead.captured")
    assert not subscribes_to(["lead.captured"], "lead.scored")
    assert subscribes_to(["lead.*"], "lead.erased")
    assert not subscribes_to(["lead.*"], "deal.won")
    assert subscribes_to(["deal.won", "*"], "engagement.recorded")


def test_only_patterns_naming_known_events_are_accepted() -> None:
    assert is_known_pattern("*") and is_known_pattern("deal.*") and is_known_pattern("deal.won")
    for bad in ("deal.closed", "nosuch.*", "lead*", "*.captured", ".*", "lead.**"):
        assert not is_known_pattern(bad), bad


def test_backoff_follows_the_schedule_then_gives_up() -> None:
    assert [retry_delay(n, STANDARD_RETRY_SCHEDULE_S) for n in range(1, 9)] == [
        5,
        300,
        1800,
        7200,
        18000,
        36000,
        36000,
        None,
    ]
    assert retry_delay(1, []) is None


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - an address under test, not a bind
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::",
        "64:ff9b::a00:1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not STRICT.allows(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


def test_configuration_can_allow_private_targets_or_chosen_networks() -> None:
    loopback = ipaddress.ip_address("127.0.0.1")
    assert TargetPolicy(allow_private=True).allows(loopback)
    cidrs = TargetPolicy.from_settings(False, ["10.0.0.0/8"])
    assert cidrs.allows(ipaddress.ip_address("10.9.9.9"))
    assert cidrs.allows(ipaddress.ip_address("::ffff:10.9.9.9"))
    assert not cidrs.allows(loopback)


def test_legacy_ipv4_spellings_are_recognised_as_addresses() -> None:
    assert literal_address("2130706433") == ipaddress.ip_address("127.0.0.1")
    assert literal_address("0x7f.1") == ipaddress.ip_address("127.0.0.1")
    assert literal_address("hooks.example.com") is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/x", "scheme"),
        ("https://user:pw@example.com/x", "credentials"),
        ("https:///path", "host"),
        ("https://example.com:99999/", "valid URL"),
        ("http://127.0.0.1/x", "not allowed"),
        ("http://[::1]:8080/x", "not allowed"),
        ("http://169.254.169.254/latest/meta-data", "not allowed"),
        ("http://10.0.0.5/x", "not allowed"),
        ("http://2130706433/x", "not allowed"),
        ("https://example.com/a b", "whitespace"),
    ],
)
def test_bad_target_urls_are_refused_with_a_reason(url: str, reason: str) -> None:
    problem = url_problem(url, STRICT)
    assert problem is not None and reason in problem


def test_public_host_names_pass_registration() -> None:
    assert url_problem("https://hooks.example.com:8443/leadflow?x=1", STRICT) is None


def test_signature_matches_an_independent_implementation_of_the_spec() -> None:
    # Test vector of the Standard Webhooks reference libraries.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    msg_id = "msg_p5jXN8AQM9LWM0D4loKWxJek"
    timestamp = 1614265330
    body = b'{"test": 2432232314}'
    assert sign(secret, msg_id, timestamp, body) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_fresh_secrets_sign_what_an_independent_verifier_accepts() -> None:
    secret = new_secret()
    key = base64.b64decode(secret.removeprefix("whsec_"))
    assert len(key) == 32
    expected = hmac.new(key, b"id1.42.{}", hashlib.sha256).digest()
    assert sign(secret, "id1", 42, b"{}") == "v1," + base64.b64encode(expected).decode()


def test_settings_read_schedule_and_cidrs_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEADFLOW_WEBHOOKS_RETRY_SCHEDULE_S", "[0.1, 0.2]")
    monkeypatch.setenv("LEADFLOW_WEBHOOKS_ALLOWED_CIDRS", "10.0.0.0/8, fd00::/8")
    monkeypatch.setenv("LEADFLOW_WEBHOOKS_ALLOW_PRIVATE_TARGETS", "true")
    settings = WebhooksSettings()
    assert settings.retry_schedule_s == [0.1, 0.2]
    assert settings.allowed_cidrs == ["10.0.0.0/8", "fd00::/8"]
    assert settings.allow_private_targets is True
    assert WebhooksSettings(retry_schedule_s="5,300").retry_schedule_s == [5, 300]


def test_settings_refuse_a_bad_cidr_or_negative_delay() -> None:
    with pytest.raises(ValueError, match="CIDR"):
        WebhooksSettings(allowed_cidrs=["not-a-network"])
    with pytest.raises(ValueError, match="retry delay"):
        WebhooksSettings(retry_schedule_s=[-1])
