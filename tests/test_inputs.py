"""Every input rule: accepted values, and the named error for each rejected one."""

from __future__ import annotations

import pytest

from teleport_auth.family import auth
from teleport_auth.goduration import DurationError, parse_duration_ns
from teleport_auth.inputs import (
    Consent,
    InputError,
    Inputs,
    env_name,
    go_parse_bool,
    is_loopback,
    lenient_bool,
    read_inputs,
    shown,
    strict_bool,
    telemetry_consent,
)

pytestmark = pytest.mark.step

PIN = "sha256:" + "ab" * 32
GOOD = {"proxy": "tele.example.com:443", "token": "gha-bot"}


def env_of(**inputs: str) -> dict[str, str]:
    merged = {**GOOD, **{k.replace("_", "-"): v for k, v in inputs.items()}}
    return {env_name(name): value for name, value in merged.items()}


ACCEPTED = [
    ("proxy-host-port", {"proxy": "tele.example.com:443"}, "proxy", "tele.example.com:443"),
    ("proxy-host-only", {"proxy": "tele.example.com"}, "proxy", "tele.example.com"),
    ("proxy-trimmed", {"proxy": "  tele.example.com:3080\n"}, "proxy", "tele.example.com:3080"),
    ("proxy-ipv4", {"proxy": "10.1.2.3:443"}, "proxy", "10.1.2.3:443"),
    ("proxy-ipv6", {"proxy": "[2001:db8::1]:443"}, "proxy", "[2001:db8::1]:443"),
    (
        "proxy-underscore",
        {"proxy": "teleport_proxy.internal:443"},
        "proxy",
        "teleport_proxy.internal:443",
    ),
    ("proxy-compose-name", {"proxy": "my_proxy:3080"}, "proxy", "my_proxy:3080"),
    # URL forms tbot's ParseAddr takes: the host part, port as given, none added.
    ("proxy-https-url", {"proxy": "https://tele.example.com:443"}, "proxy", "tele.example.com:443"),
    (
        "proxy-https-slash",
        {"proxy": "https://tele.example.com:443/"},
        "proxy",
        "tele.example.com:443",
    ),
    ("proxy-https-no-port", {"proxy": "https://tele.example.com"}, "proxy", "tele.example.com"),
    (
        "proxy-http-url",
        {"proxy": "http://tele.example.com:3080/"},
        "proxy",
        "tele.example.com:3080",
    ),
    ("proxy-tcp-url", {"proxy": "tcp://tele.example.com:443"}, "proxy", "tele.example.com:443"),
    (
        "proxy-scheme-case",
        {"proxy": "HTTPS://tele.example.com:443"},
        "proxy",
        "tele.example.com:443",
    ),
    ("proxy-url-ipv6", {"proxy": "https://[2001:db8::1]:443/"}, "proxy", "[2001:db8::1]:443"),
    ("proxy-url-trimmed", {"proxy": " https://tele.example.com/\n"}, "proxy", "tele.example.com"),
    ("token-trimmed", {"token": " my-token \n"}, "token", "my-token"),
    ("ttl-empty", {"certificate_ttl": ""}, "certificate_ttl", ""),
    ("ttl-minutes", {"certificate_ttl": "90m"}, "certificate_ttl", "90m"),
    ("ttl-compound", {"certificate_ttl": "1h30m"}, "certificate_ttl", "1h30m"),
    ("ttl-fraction", {"certificate_ttl": "1.5h"}, "certificate_ttl", "1.5h"),
    ("ttl-go-max", {"certificate_ttl": "2562047h"}, "certificate_ttl", "2562047h"),
    (
        "ttl-go-max-exact",
        {"certificate_ttl": "2562047h47m16.854775807s"},
        "certificate_ttl",
        "2562047h47m16.854775807s",
    ),
    ("ttl-zero-tbot-default", {"certificate_ttl": "0"}, "certificate_ttl", "0"),
    ("ttl-zero-unit", {"certificate_ttl": "0s"}, "certificate_ttl", "0s"),
    ("ttl-plus-sign", {"certificate_ttl": "+90m"}, "certificate_ttl", "+90m"),
    ("ttl-micro-sign", {"certificate_ttl": "1500000\u00b5s"}, "certificate_ttl", "1500000\u00b5s"),
    ("ttl-trailing-dot", {"certificate_ttl": "1.h"}, "certificate_ttl", "1.h"),
    ("pins-empty", {"ca_pins": ""}, "ca_pins", ()),
    ("pins-two-lines", {"ca_pins": f"{PIN}\n\n  {PIN}  \n"}, "ca_pins", (PIN, PIN)),
    ("pins-upper-hex", {"ca_pins": PIN.upper().replace("SHA256", "sha256")}, "ca_pins", (PIN,)),
    # disable-env-vars as the original parses it: true/1, any case, trimmed.
    ("env-vars-true", {"disable_env_vars": "true"}, "disable_env_vars", True),
    ("env-vars-tRuE-trimmed", {"disable_env_vars": " tRuE\n"}, "disable_env_vars", True),
    ("env-vars-1", {"disable_env_vars": "1"}, "disable_env_vars", True),
    ("env-vars-FALSE", {"disable_env_vars": "FALSE"}, "disable_env_vars", False),
    ("env-vars-0", {"disable_env_vars": "0"}, "disable_env_vars", False),
    ("env-vars-empty", {"disable_env_vars": ""}, "disable_env_vars", False),
    ("env-vars-yes-is-off", {"disable_env_vars": "yes"}, "disable_env_vars", False),
    ("env-vars-on-is-off", {"disable_env_vars": "on"}, "disable_env_vars", False),
]


@pytest.mark.parametrize(
    ("overrides", "field", "expected"),
    [case[1:] for case in ACCEPTED],
    ids=[case[0] for case in ACCEPTED],
)
def test_accepted(overrides: dict[str, str], field: str, expected: object) -> None:
    assert getattr(read_inputs(env_of(**overrides)), field) == expected


REJECTED = [
    ("proxy-missing", {"proxy": ""}, "'proxy' is required"),
    ("proxy-blank", {"proxy": "   "}, "'proxy' is required"),
    ("proxy-other-scheme", {"proxy": "ftp://tele.example.com"}, "only an https://, http:// or"),
    ("proxy-wss-scheme", {"proxy": "wss://tele.example.com:443"}, "only an https://, http:// or"),
    ("proxy-url-path", {"proxy": "https://tele.example.com/webapi"}, "without a user, path"),
    ("proxy-url-two-slashes", {"proxy": "https://tele.example.com//"}, "without a user, path"),
    ("proxy-url-query", {"proxy": "https://tele.example.com/?x=1"}, "without a user, path"),
    ("proxy-url-fragment", {"proxy": "https://tele.example.com#x"}, "without a user, path"),
    ("proxy-url-user", {"proxy": "https://me@tele.example.com"}, "without a user, path"),
    ("proxy-url-empty-host", {"proxy": "https:///"}, "invalid host"),
    ("proxy-url-bad-port", {"proxy": "https://tele.example.com:0/"}, "invalid port"),
    ("proxy-no-scheme-name", {"proxy": "://tele.example.com"}, "without a user, path"),
    ("proxy-path", {"proxy": "tele.example.com/webapi"}, "without a user, path"),
    ("proxy-query", {"proxy": "tele.example.com?x=1"}, "'proxy'"),
    ("proxy-user", {"proxy": "me@tele.example.com"}, "'proxy'"),
    ("proxy-space", {"proxy": "tele example.com"}, "whitespace or control"),
    ("proxy-control", {"proxy": "tele.example.com\x07"}, "whitespace or control"),
    ("proxy-newline-inside", {"proxy": "a.com\nb.com"}, "whitespace or control"),
    ("proxy-bad-port", {"proxy": "tele.example.com:https"}, "invalid port"),
    ("proxy-port-zero", {"proxy": "tele.example.com:0"}, "invalid port"),
    ("proxy-port-too-big", {"proxy": "tele.example.com:70000"}, "invalid port"),
    ("proxy-port-non-ascii", {"proxy": "tele.example.com:\u0664\u0664\u0663"}, "invalid port"),
    ("proxy-port-4301-digits", {"proxy": "tele.example.com:" + "9" * 4301}, "invalid port"),
    ("proxy-port-6-digits", {"proxy": "tele.example.com:000443"}, "invalid port"),
    ("proxy-ipv6-port-long", {"proxy": "[::1]:" + "1" * 5000}, "invalid port"),
    ("proxy-bad-host", {"proxy": "-tele.example.com"}, "invalid host"),
    ("proxy-bad-ipv6", {"proxy": "[zz::1]:443"}, "invalid host"),
    ("token-missing", {"token": ""}, "'token' is required"),
    ("token-space", {"token": "my token"}, "'token' must be a join token name"),
    ("token-control", {"token": "tok\x00en"}, "'token' must be a join token name"),
    ("ttl-no-unit", {"certificate_ttl": "90"}, "'certificate-ttl' must be a Go duration"),
    ("ttl-negative", {"certificate_ttl": "-1h"}, "'certificate-ttl' must not be negative"),
    ("ttl-days", {"certificate_ttl": "1d"}, "is not valid"),
    ("ttl-words", {"certificate_ttl": "one hour"}, "is not valid"),
    ("ttl-non-ascii-digit", {"certificate_ttl": "\u0661h"}, "is not valid"),
    ("ttl-dot-only", {"certificate_ttl": ".h"}, "is not valid"),
    ("ttl-over-go-max", {"certificate_ttl": "2562048h"}, "too long for Go's time.Duration"),
    (
        "ttl-one-ns-over-go-max",
        {"certificate_ttl": "2562047h47m16.854775808s"},
        "too long for Go's time.Duration",
    ),
    ("ttl-digits-overflow", {"certificate_ttl": "9" * 30 + "ns"}, "too long"),
    ("pins-no-prefix", {"ca_pins": "ab" * 32}, "'ca-pins' line 1 must be a CA pin"),
    ("pins-short", {"ca_pins": "sha256:abc"}, "'ca-pins' line 1"),
    ("pins-second-line", {"ca_pins": f"{PIN}\nsha1:{'a' * 40}"}, "'ca-pins' line 2"),
    ("pins-not-hex", {"ca_pins": "sha256:" + "zz" * 32}, "'ca-pins' line 1"),
]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [case[1:] for case in REJECTED],
    ids=[case[0] for case in REJECTED],
)
def test_rejected(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(InputError) as caught:
        read_inputs(env_of(**overrides))
    assert message in caught.value.message
    assert caught.value.exit_code == 1


@pytest.mark.parametrize(
    ("proxy", "notice"),
    [
        ("tele.example.com:443", ()),
        (
            "https://tele.example.com:443/",
            ("Input 'proxy' is a URL: tbot is given the address tele.example.com:443.",),
        ),
    ],
)
def test_a_proxy_url_is_normalised_with_one_notice(proxy: str, notice: tuple[str, ...]) -> None:
    inputs = read_inputs(env_of(proxy=proxy))
    assert inputs.proxy == "tele.example.com:443"
    assert inputs.notices == notice


@pytest.mark.parametrize(
    "secret_input",
    [{"proxy": "https://SECRET-PROXY.example/path"}, {"token": "SECRET TOKEN"}],
    ids=["proxy", "token"],
)
def test_errors_never_repeat_proxy_or_token(secret_input: dict[str, str]) -> None:
    with pytest.raises(InputError) as caught:
        read_inputs(env_of(**secret_input))
    assert "SECRET" not in caught.value.message


@pytest.mark.parametrize(
    "proxy",
    [
        "proxy-4f1c.example:99999",  # the port, out of range
        "proxy-4f1c.example:44x3",  # the port, not a number
        "proxy_4f1c!.example:443",  # the host name
        "-proxy-4f1c.example",  # the host name
        "proxy-4f1c .example:443",  # whitespace
    ],
)
def test_proxy_errors_name_the_input_and_do_not_echo_the_value(proxy: str) -> None:
    # The error says which input and what was expected; the value stays out of
    # it (the log is masked anyway, but nothing of ours prints what was given).
    with pytest.raises(InputError) as caught:
        read_inputs(env_of(proxy=proxy))
    message = caught.value.message
    assert message.startswith("Input 'proxy' ")
    assert "4f1c" not in message
    assert "99999" not in message
    assert "44x3" not in message


CONSENT = [
    # (id, input, job env TELEPORT_ANONYMOUS_TELEMETRY, enabled, warns)
    ("input-true", "true", None, True, False),
    ("input-TRUE-trimmed", "  TRUE \n", None, True, False),
    ("input-1", "1", None, True, False),
    ("input-false", "false", None, False, False),
    ("input-0", "0", None, False, False),
    ("input-empty", "", None, False, False),
    ("input-yes-warns", "yes", None, False, True),
    ("input-on-warns", "on", None, False, True),
    ("input-overrides-job", "false", "1", False, False),
    ("job-1", "", "1", True, False),
    ("job-t", "", "t", True, False),
    ("job-True", "", "True", True, False),
    ("job-0", "", "0", False, False),
    ("job-tRUE-go-rejects", "", "tRUE", False, True),
    ("job-yes-go-rejects", "", "yes", False, True),
]


@pytest.mark.parametrize(
    ("given", "job", "enabled", "warns"),
    [case[1:] for case in CONSENT],
    ids=[case[0] for case in CONSENT],
)
def test_telemetry_consent(given: str, job: str | None, enabled: bool, warns: bool) -> None:
    env = {env_name("anonymous-telemetry"): given}
    if job is not None:
        env["TELEPORT_ANONYMOUS_TELEMETRY"] = job
    consent = telemetry_consent(env)
    assert consent.enabled is enabled
    assert bool(consent.warning) is warns
    if warns:
        assert "anonymous telemetry stays off" in consent.warning


# Go's own results for time.ParseDuration (its test table and the int64 edge).
GO_DURATIONS = [
    ("0", 0),
    ("5s", 5_000_000_000),
    ("-5s", -5_000_000_000),
    ("+5s", 5_000_000_000),
    ("1.5h", 5_400_000_000_000),
    ("1h30m", 5_400_000_000_000),
    (".5s", 500_000_000),
    ("1.s", 1_000_000_000),
    ("1.004s", 1_004_000_000),
    ("100.00100s", 100_001_000_000),
    ("10ns", 10),
    ("11us", 11_000),
    ("12\u00b5s", 12_000),
    ("12\u03bcs", 12_000),
    ("3h30m", 12_600_000_000_000),
    ("10.5s4m", 250_500_000_000),
    ("-2m3.4s", -123_400_000_000),
    ("1h2m3s4ms5us6ns", 3_723_004_005_006),
    ("52763797000ns", 52_763_797_000),
    ("0.3333333333333333333h", 1_200_000_000_000),
    ("9007199254740993ns", 9_007_199_254_740_993),
    ("9223372036854775807ns", 2**63 - 1),
    ("9223372036854775.807us", 2**63 - 1),
    ("2562047h47m16.854775807s", 2**63 - 1),
    ("-9223372036854775808ns", -(2**63)),
    ("-2562047h47m16.854775808s", -(2**63)),
    ("0.100000000000000000000h", 360_000_000_000),
    ("0.830103483285477580700h", 2_988_372_539_827),
]
GO_DURATION_ERRORS = [
    "",
    "3",
    "-",
    "s",
    ".",
    "-.",
    ".s",
    "+.s",
    "1d",
    "\x85\x85",
    "\xffff",
    "hello \xffff world",
    "9223372036854775810ns",
    "9223372036854775808ns",
    "2562047h47m16.854775808s",
    "-9223372036854775809ns",
    "1h-2m",
    " 1h",
]


@pytest.mark.parametrize(("text", "nanoseconds"), GO_DURATIONS)
def test_go_parse_duration(text: str, nanoseconds: int) -> None:
    assert parse_duration_ns(text) == nanoseconds


@pytest.mark.parametrize("text", GO_DURATION_ERRORS)
def test_go_parse_duration_errors(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration_ns(text)


def test_disable_env_vars_odd_value_warns_once_naming_the_input() -> None:
    inputs = read_inputs(env_of(disable_env_vars="yes"))
    assert inputs.disable_env_vars is False
    assert len(inputs.warnings) == 1
    assert "'disable-env-vars'" in inputs.warnings[0]
    assert read_inputs(env_of(disable_env_vars="false")).warnings == ()


REISSUE = [
    ("", False),
    ("true", True),
    ("True", True),
    ("TRUE", True),
    ("False", False),
    (" true\n", True),
]


@pytest.mark.parametrize(("given", "expected"), REISSUE)
def test_allow_reissue_accepted(given: str, expected: bool) -> None:
    assert auth.read({env_name("allow-reissue"): given}).allow_reissue is expected


@pytest.mark.parametrize("given", ["yes", "1", "tRue", "on"])
def test_allow_reissue_keeps_the_originals_strict_parsing(given: str) -> None:
    with pytest.raises(InputError) as caught:
        auth.read({env_name("allow-reissue"): given})
    assert "'allow-reissue' must be a boolean" in caught.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", True),
        ("t", True),
        ("T", True),
        ("TRUE", True),
        ("true", True),
        ("True", True),
        ("0", False),
        ("f", False),
        ("F", False),
        ("FALSE", False),
        ("false", False),
        ("False", False),
        ("yes", None),
        ("tRue", None),
        ("", None),
        (" 1", None),
    ],
)
def test_go_parse_bool(text: str, expected: bool | None) -> None:
    assert go_parse_bool(text) is expected


# --- the edges of each rule, and the messages in full ----------------------------------

LABEL = "a" * 63
HOST_253 = ".".join([LABEL, LABEL, LABEL, "b" * 61])  # the longest host name


@pytest.mark.parametrize(
    "proxy",
    [
        "tele.example.com:1",
        "tele.example.com:65535",
        "[::1]",
        "[::1]:8",
        "tele.example.com.:443",  # a fully qualified name, its root dot kept
        "TELE-X.EXAMPLE.COM:443",  # upper case, X included
        "tele-X:443",
        "[fe80::]:443",
        HOST_253,
    ],
)
def test_proxy_edges_accepted(proxy: str) -> None:
    assert read_inputs(env_of(proxy=proxy)).proxy == proxy


@pytest.mark.parametrize(
    ("proxy", "problem"),
    [
        ("tele.example.com:0", "has an invalid port"),
        ("tele.example.com:65536", "has an invalid port"),
        ("[::1", "has an invalid host name"),
        (":443", "has an invalid host name"),
        (".tele.example.com", "has an invalid host name"),
        (HOST_253 + "b", "has an invalid host name"),
    ],
)
def test_proxy_edges_rejected(proxy: str, problem: str) -> None:
    with pytest.raises(InputError) as caught:
        read_inputs(env_of(proxy=proxy))
    # What is expected is said, whatever the problem.
    assert caught.value.message.startswith(f"Input 'proxy' {problem}")
    assert "the Teleport Proxy address as host[:port]" in caught.value.message
    assert caught.value.message.endswith(", e.g. tele.example.com:443.")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"token": " "}, "Input 'token' is required: the name of the bot's GitHub join token."),
        (
            {"token": "a b"},
            "Input 'token' must be a join token name without whitespace or control characters.",
        ),
        (
            {"certificate_ttl": "1d"},
            "Input 'certificate-ttl' must be a Go duration such as 90m or 1h30m; "
            "'1d' is not valid.",
        ),
        (
            {"certificate_ttl": "2562048h"},
            "Input 'certificate-ttl' must be a Go duration such as 90m or 1h30m; "
            "'2562048h' is too long for Go's time.Duration.",
        ),
        (
            {"certificate_ttl": "-1h"},
            "Input 'certificate-ttl' must not be negative (got '-1h'); "
            "give a duration such as 90m or 1h30m.",
        ),
        (
            {"ca_pins": f"{PIN}\n\nsha256:x"},
            "Input 'ca-pins' line 3 must be a CA pin of the form sha256:<64 hex digits>, "
            "as printed by `tctl status`.",
        ),
    ],
)
def test_messages_in_full(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(InputError) as caught:
        read_inputs(env_of(**overrides))
    assert caught.value.message == message


def test_each_input_is_read_from_its_own_variable() -> None:
    upper_pin = "sha256:" + "AB" * 32
    given = env_of(proxy=" p.example:1 ", token=" t ", certificate_ttl=" 2h ", ca_pins=upper_pin)
    assert read_inputs(given) == Inputs(
        "p.example:1", "t", "2h", (upper_pin.lower(),), disable_env_vars=False
    )


def test_shown_values_are_short_single_line_reprs() -> None:
    assert shown("a" * 40) == repr("a" * 40)
    assert shown("a" * 41) == repr("a" * 37 + "...")
    assert shown("two\nlines") == "'two\\nlines'"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("true", (True, "")),
        (" TRUE ", (True, "")),
        ("1", (True, "")),
        ("0", (False, "")),
        ("", (False, "")),
        ("False", (False, "")),
    ],
)
def test_lenient_bool(given: str, expected: tuple[bool, str]) -> None:
    assert lenient_bool("disable-env-vars", given) == expected


def test_lenient_bool_says_what_it_did_with_an_odd_value() -> None:
    assert lenient_bool("disable-env-vars", " yes ") == (
        False,
        "Input 'disable-env-vars' should be true or false (got 'yes'); "
        "it is treated as false, as the original action does.",
    )


def test_strict_bool_message() -> None:
    with pytest.raises(InputError) as caught:
        strict_bool("allow-reissue", " yes ")
    assert caught.value.message == (
        "Input 'allow-reissue' must be a boolean: true | True | TRUE | false | False | FALSE "
        "(got 'yes')."
    )


def test_telemetry_consent_warnings_in_full() -> None:
    assert telemetry_consent({env_name("anonymous-telemetry"): " on "}) == Consent(
        False,
        "Input 'anonymous-telemetry' should be true or false (got 'on'); "
        "anonymous telemetry stays off.",
    )
    assert telemetry_consent({"TELEPORT_ANONYMOUS_TELEMETRY": "yes"}) == Consent(
        False,
        "TELEPORT_ANONYMOUS_TELEMETRY='yes' is not a boolean "
        "(1, t, true, 0, f, false, ...); anonymous telemetry stays off.",
    )


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LocalHost", True),
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("localhost.example.com", False),
        ("10.0.0.1", False),
        ("::", False),
        ("0.0.0.0", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_an_input_that_is_not_utf8_is_named_not_shown() -> None:
    with pytest.raises(InputError) as caught:
        read_inputs(env_of(token="tok\udcffen"))
    assert caught.value.message == (
        "Input 'token' must be UTF-8 text, and it holds bytes that are not "
        "(is the runner's environment in another encoding?)."
    )


def test_a_proxy_url_keeps_an_upper_case_x() -> None:
    assert read_inputs(env_of(proxy="https://TELE-X.EXAMPLE.COM:443")).proxy == (
        "TELE-X.EXAMPLE.COM:443"
    )


def test_a_proxy_url_of_another_scheme_says_which_tbot_takes() -> None:
    with pytest.raises(InputError) as caught:
        read_inputs(env_of(proxy="ftp://tele.example.com"))
    assert caught.value.message.endswith(
        ": tbot takes only an https://, http:// or tcp:// URL there."
    )
