"""Flow.parse: one flow as a person writes it, checked in the library (the CLI's check and Engine.explain
share it), every problem named by its field."""
from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

import flowsim
from flowsim.errors import InputError
from flowsim.model.network import Flow

EXAMPLE = Path(__file__).resolve().parents[1] / "traces" / "example.yaml"


def problems(**fields) -> list[str]:
    with pytest.raises(InputError) as caught:
        Flow.parse(**fields)
    return [str(p) for p in caught.value.problems]


def test_a_good_flow():
    flow = Flow.parse("10.0.1.10", " 10.0.2.10", "TCP", "40000", 8080)
    assert flow == Flow(ipaddress.ip_address("10.0.1.10"), ipaddress.ip_address("10.0.2.10"), 6, 40000, 8080)
    assert Flow.parse("::1", "::2", "icmpv6", 5, 6).src_port == 0  # no ports for protocols without them
    assert Flow.parse("10.0.3.10", "8.8.8.8", 17, dst_port=53, eni="eni-db-1", direction="out").direction == "egress"


@pytest.mark.parametrize("fields,expected", [
    (dict(src="10.0.1.999", dst="10.0.2.10", protocol="tcp", dst_port=80), ["src: '10.0.1.999' is not an IPv4 or IPv6"]),
    (dict(src="fe80::1%eth0", dst="fe80::2", protocol="udp", dst_port=53), ["src: 'fe80::1%eth0' is not an IPv4"]),
    (dict(src="10.0.1.10", dst="10.0.2.10", protocol="tcp", dst_port="٢٢"), ["dst_port: '٢٢' is not a port"]),
    (dict(src="10.0.1.10", dst="10.0.2.10", protocol="tcp", dst_port=70000), ["dst_port: '70000' is not a port"]),
    (dict(src="10.0.1.10", dst="10.0.2.10", protocol="all"), ["protocol: a flow has one protocol"]),
    (dict(src="10.0.1.10", dst="10.0.2.10", protocol="bogus"), ["protocol: unknown protocol 'bogus'"]),
    (dict(src="10.0.1.10", dst="10.0.2.10", protocol="tcp"), ["dst_port: a tcp or udp flow needs a destination port"]),
    (dict(src="10.0.1.10", dst="::1", protocol="icmp"), ["src/dst: source and destination are of different IP versions"]),
    (dict(src="10.0.1.10", dst="10.0.2.10", protocol="icmp", eni="eni-web-1"), ["eni: endpoint mode needs direction"]),
    (dict(src="10.0.1.10", dst="10.0.2.10", protocol="icmp", direction="in"), ["direction: direction needs eni"]),
    (dict(src="x", dst="y", protocol="z"), ["src:", "dst:", "protocol:"]),
])
def test_every_problem_is_named_by_its_field(fields, expected):
    found = problems(**fields)
    assert len(found) == len(expected)
    for text, want in zip(found, expected):
        assert text.startswith(want), (text, want)


def test_labels_name_the_command_line_flags():
    assert problems(src="x", dst="10.0.0.1", protocol="tcp", dst_port=1, labels={"src": "--src"}) == \
        ["--src: 'x' is not an IPv4 or IPv6 address"]


def test_engine_explain_raises_flowsim_s_own_error():
    engine = flowsim.compile(flowsim.load_config(EXAMPLE))
    with pytest.raises(InputError, match="protocol: unknown protocol 'bogus'"):
        engine.explain(src="10.0.1.10", dst="10.0.2.10", protocol="bogus", dst_port=80)
    with pytest.raises(InputError, match="src: '10.0.1.999'"):
        engine.explain(src="10.0.1.999", dst="10.0.2.10", protocol="tcp", dst_port=80)
    assert engine.explain(src="10.0.1.10", dst="10.0.2.10", protocol=6, dst_port=8080).verdict.verdict == "allow"
