"""Every input rule: accepted values, and the named error for each rejected one."""

from __future__ import annotations

import pytest

from teleport_auth.inputs import (
    ENV,
    InputError,
    go_duration_seconds,
    go_parse_bool,
    read_inputs,
    telemetry_consent,
)

pytestmark = pytest.mark.step

PIN = "sha256:" + "ab" * 32
GOOD = {"proxy": "tele.example.com:443", "token": "gha-bot"}


def env_of(**inputs: str) -> dict[str, str]:
    merged = {**GOOD, **{k.replace("_", "-"): v for k, v in inputs.items()}}
    return {ENV[name]: value for name, value in merged.items()}


ACCEPTED = [
    ("proxy-host-port", {"proxy": "tele.example.com:443"}, "proxy", "tele.example.com:443"),
    ("proxy-host-only", {"proxy": "tele.example.com"}, "proxy", "tele.example.com"),
    ("proxy-trimmed", {"proxy": "  tele.example.com:3080\n"}, "proxy", "tele.example.com:3080"),
    ("proxy-ipv4", {"proxy": "10.1.2.3:443"}, "proxy", "10.1.2.3:443"),
    ("proxy-ipv6", {"proxy": "[2001:db8::1]:443"}, "proxy", "[2001:db8::1]:443"),
    ("token-trimmed", {"token": " my-token \n"}, "token", "my-token"),
    ("ttl-empty", {"certificate_ttl": ""}, "certificate_ttl", ""),
    ("ttl-minutes", {"certificate_ttl": "90m"}, "certificate_ttl", "90m"),
    ("ttl-compound", {"certificate_ttl": "1h30m"}, "certificate_ttl", "1h30m"),
    ("ttl-fraction", {"certificate_ttl": "1.5h"}, "certificate_ttl", "1.5h"),
    ("ttl-go-max", {"certificate_ttl": "2562047h"}, "certificate_ttl", "2562047h"),
    ("pins-empty", {"ca_pins": ""}, "ca_pins", ()),
    ("pins-two-lines", {"ca_pins": f"{PIN}\n\n  {PIN}  \n"}, "ca_pins", (PIN, PIN)),
    ("pins-upper-hex", {"ca_pins": PIN.upper().replace("SHA256", "sha256")}, "ca_pins", (PIN,)),
    ("reissue-empty", {"allow_reissue": ""}, "allow_reissue", False),
    ("reissue-true", {"allow_reissue": "true"}, "allow_reissue", True),
    ("reissue-True", {"allow_reissue": "True"}, "allow_reissue", True),
    ("reissue-TRUE", {"allow_reissue": "TRUE"}, "allow_reissue", True),
    ("reissue-false", {"allow_reissue": "False"}, "allow_reissue", False),
    ("env-vars-true", {"disable_env_vars": "true"}, "disable_env_vars", True),
    ("env-vars-FALSE", {"disable_env_vars": "FALSE"}, "disable_env_vars", False),
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
    ("proxy-scheme", {"proxy": "https://tele.example.com"}, "without a scheme"),
    ("proxy-path", {"proxy": "tele.example.com/webapi"}, "without a scheme, user, path"),
    ("proxy-query", {"proxy": "tele.example.com?x=1"}, "'proxy'"),
    ("proxy-user", {"proxy": "me@tele.example.com"}, "'proxy'"),
    ("proxy-space", {"proxy": "tele example.com"}, "whitespace or control"),
    ("proxy-control", {"proxy": "tele.example.com\x07"}, "whitespace or control"),
    ("proxy-newline-inside", {"proxy": "a.com\nb.com"}, "whitespace or control"),
    ("proxy-bad-port", {"proxy": "tele.example.com:https"}, "invalid port"),
    ("proxy-port-zero", {"proxy": "tele.example.com:0"}, "invalid port"),
    ("proxy-port-too-big", {"proxy": "tele.example.com:70000"}, "invalid port"),
    ("proxy-port-non-ascii", {"proxy": "tele.example.com:\u0664\u0664\u0663"}, "invalid port"),
    ("proxy-bad-host", {"proxy": "-tele.example.com"}, "invalid host"),
    ("proxy-bad-ipv6", {"proxy": "[zz::1]:443"}, "invalid host"),
    ("token-missing", {"token": ""}, "'token' is required"),
    ("token-space", {"token": "my token"}, "'token' must be a join token name"),
    ("token-control", {"token": "tok\x00en"}, "'token' must be a join token name"),
    ("ttl-no-unit", {"certificate_ttl": "90"}, "'certificate-ttl' must be a positive Go duration"),
    ("ttl-zero", {"certificate_ttl": "0"}, "'certificate-ttl' must be a positive Go duration"),
    ("ttl-zero-unit", {"certificate_ttl": "0s"}, "positive Go duration"),
    ("ttl-negative", {"certificate_ttl": "-1h"}, "positive Go duration"),
    ("ttl-days", {"certificate_ttl": "1d"}, "positive Go duration"),
    ("ttl-words", {"certificate_ttl": "one hour"}, "positive Go duration"),
    ("ttl-non-ascii-digit", {"certificate_ttl": "\u0661h"}, "positive Go duration"),
    ("ttl-over-go-max", {"certificate_ttl": "2562048h"}, "positive Go duration"),
    ("pins-no-prefix", {"ca_pins": "ab" * 32}, "'ca-pins' line 1 must be a CA pin"),
    ("pins-short", {"ca_pins": "sha256:abc"}, "'ca-pins' line 1"),
    ("pins-second-line", {"ca_pins": f"{PIN}\nsha1:{'a' * 40}"}, "'ca-pins' line 2"),
    ("pins-not-hex", {"ca_pins": "sha256:" + "zz" * 32}, "'ca-pins' line 1"),
    ("reissue-yes", {"allow_reissue": "yes"}, "'allow-reissue' must be a boolean"),
    ("reissue-1", {"allow_reissue": "1"}, "'allow-reissue' must be a boolean"),
    ("reissue-tRue", {"allow_reissue": "tRue"}, "'allow-reissue' must be a boolean"),
    ("env-vars-on", {"disable_env_vars": "on"}, "'disable-env-vars' must be a boolean"),
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
    "secret_input",
    [{"proxy": "https://SECRET-PROXY.example"}, {"token": "SECRET TOKEN"}],
    ids=["proxy", "token"],
)
def test_errors_never_repeat_proxy_or_token(secret_input: dict[str, str]) -> None:
    with pytest.raises(InputError) as caught:
        read_inputs(env_of(**secret_input))
    assert "SECRET" not in caught.value.message


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
    env = {ENV["anonymous-telemetry"]: given}
    if job is not None:
        env["TELEPORT_ANONYMOUS_TELEMETRY"] = job
    consent = telemetry_consent(env)
    assert consent.enabled is enabled
    assert bool(consent.warning) is warns
    if warns:
        assert "anonymous telemetry stays off" in consent.warning


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90m", 5400.0), ("1h30m", 5400.0), ("1.5h", 5400.0), ("500ms", 0.5), ("0", 0.0)],
)
def test_go_duration_seconds(text: str, seconds: float) -> None:
    assert go_duration_seconds(text) == pytest.approx(seconds)


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
