"""tcpeek filter grammar and matching (spec: tcpeek.md, "Direction and filters")."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tcpscope.analyze.tcpeek_filters import FilterSet, numbered, parse_filter
from tcpscope.errors import FilterSyntaxError, TcpscopeError


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def matches(text: str, direction: str, remote: str, port: int) -> bool:
    f = parse_filter(text)
    return f.name in FilterSet([f]).match(direction, ip(remote), port)


# --- valid expressions ------------------------------------------------------


def test_name_direction_and_any() -> None:
    f = parse_filter("web:RX@*:80")
    assert (f.name, f.direction, f.is_exclusion) == ("web", "RX", False)
    assert matches("web:RX@*:80", "RX", "198.18.0.1", 80)
    assert matches("web:RX@*:80", "RX", "fd00::1", 80)  # '*' covers both families
    assert not matches("web:RX@*:80", "RX", "198.18.0.1", 81)
    assert not matches("web:RX@*:80", "TX", "198.18.0.1", 80)


@pytest.mark.parametrize("text", ["a:TX@%:%", "a:TX@*:*", "a:TX@%:*", "a:TX@*:%"])
def test_percent_is_a_wildcard_too(text: str) -> None:
    assert matches(text, "TX", "203.0.113.9", 1)
    assert matches(text, "TX", "2001:db8::9", 65535)
    assert not matches(text, "RX", "203.0.113.9", 1)


def test_ipv4_host() -> None:
    text = "h:TX@192.168.0.1:80"
    assert matches(text, "TX", "192.168.0.1", 80)
    assert not matches(text, "TX", "192.168.0.2", 80)


def test_ipv4_network_prefix() -> None:
    text = "n:TX@192.168.0.0/24:%"
    assert matches(text, "TX", "192.168.0.0", 1)
    assert matches(text, "TX", "192.168.0.255", 22)
    assert not matches(text, "TX", "192.168.1.0", 22)
    assert not matches(text, "TX", "191.168.0.7", 22)


def test_ipv4_network_with_host_bits_is_masked() -> None:
    assert matches("n:RX@10.1.2.3/8:443", "RX", "10.200.0.1", 443)
    assert not matches("n:RX@10.1.2.3/8:443", "RX", "11.1.2.3", 443)


def test_prefix_zero_and_full() -> None:
    assert matches("z:RX@1.2.3.4/0:80", "RX", "255.255.255.255", 80)
    assert not matches("z:RX@1.2.3.4/0:80", "RX", "fd00::1", 80)  # still IPv4 only
    assert matches("f:RX@1.2.3.4/32:80", "RX", "1.2.3.4", 80)
    assert not matches("f:RX@1.2.3.4/32:80", "RX", "1.2.3.5", 80)


def test_several_ports() -> None:
    text = "p:TX@192.168.0.1:80:443:8080"
    for port in (80, 443, 8080):
        assert matches(text, "TX", "192.168.0.1", port)
    assert not matches(text, "TX", "192.168.0.1", 8443)


def test_wildcard_among_ports_means_any() -> None:
    assert matches("p:TX@192.168.0.1:80:*", "TX", "192.168.0.1", 12345)


def test_several_groups() -> None:
    text = "g:TX@192.168.0.1:80:443:8080,192.168.0.2:80,192.168.0.3:80:8080"
    assert matches(text, "TX", "192.168.0.1", 8080)
    assert matches(text, "TX", "192.168.0.2", 80)
    assert not matches(text, "TX", "192.168.0.2", 443)  # 443 belongs to .1 only
    assert matches(text, "TX", "192.168.0.3", 8080)
    assert not matches(text, "TX", "192.168.0.4", 80)
    assert len(parse_filter(text).groups) == 3


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("v6:RX@[2001:db8::/32]:443", "2001:db8:ffff::1", "2001:db9::1"),
        ("v6:RX@[2001:db8::]/32:443", "2001:db8:ffff::1", "2001:db9::1"),
        ("v6:RX@[fd00::1]:443", "fd00::1", "fd00::2"),
        ("v6:RX@[fd00::1/128]:443", "fd00::1", "fd00::2"),
        ("v6:RX@[::]/0:443", "2001:db8::1", "198.18.0.1"),
    ],
)
def test_ipv6(text: str, inside: str, outside: str) -> None:
    assert matches(text, "RX", inside, 443)
    assert not matches(text, "RX", inside, 80)
    assert not matches(text, "RX", outside, 443)


def test_ipv4_filter_never_matches_ipv6_and_back() -> None:
    # ::ffff:0:0/96 and 0.0.0.0/0 share no bytes with the other family
    assert not matches("a:RX@0.0.0.0/0:*", "RX", "::", 80)
    assert not matches("a:RX@[::/0]:*", "RX", "0.0.0.0", 80)
    assert not matches("a:RX@[::ffff:198.18.0.1]:*", "RX", "198.18.0.1", 80)


def test_ipv6_wildcard_in_brackets() -> None:
    assert matches("a:RX@[*]:80", "RX", "198.18.0.1", 80)
    assert matches("a:RX@[%]:80", "RX", "fd00::5", 80)


def test_mixed_family_groups() -> None:
    text = "dual:RX@198.18.0.0/15:22,[fd00::/8]:22"
    assert matches(text, "RX", "198.19.255.255", 22)
    assert matches(text, "RX", "fdff::1", 22)
    assert not matches(text, "RX", "fe80::1", 22)


# --- invalid expressions ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("web:XX@*:80", "bad direction 'XX' (RX or TX)"),
        ("web:rx@*:80", "bad direction 'rx' (RX or TX)"),
        ("web:@*:80", "bad direction '' (RX or TX)"),
        ("web:RX*:80", "missing '@'"),
        ("web", "missing '@'"),
        ("webRX@*:80", "expected NAME:DIR before '@'"),
        ("web:RX@", "missing address:port after '@'"),
        ("web:RX@*:80,", "empty address:port group"),
        ("web:RX@,*:80", "empty address:port group"),
        ("web:RX@*:80,,*:81", "empty address:port group"),
        ("web:RX@*", "missing port after '*'"),
        ("web:RX@1.2.3.4", "missing port after '1.2.3.4'"),
        ("web:RX@:80", "missing address in ':80'"),
        ("web:RX@1.2.3:80", "bad IPv4 address '1.2.3'"),
        ("web:RX@1.2.3.256:80", "bad IPv4 address '1.2.3.256'"),
        ("web:RX@host.example:80", "bad IPv4 address 'host.example'"),
        ("web:RX@1.2.3.4/33:80", "prefix length 33 out of range 0-32"),
        ("web:RX@1.2.3.4/:80", "bad prefix length ''"),
        ("web:RX@1.2.3.4/x:80", "bad prefix length 'x'"),
        ("web:RX@1.2.3.4/-1:80", "bad prefix length '-1'"),
        ("web:RX@*/8:80", "a wildcard address takes no prefix length"),
        ("web:RX@*:0", "port 0 out of range 1-65535"),
        ("web:RX@*:65536", "port 65536 out of range 1-65535"),
        ("web:RX@*:abc", "bad port 'abc'"),
        ("web:RX@*:-1", "bad port '-1'"),
        ("web:RX@*:80:", "empty port"),
        ("web:RX@*:80::443", "empty port"),
        ("web:RX@*:", "empty port"),
        ("web:RX@fd00::1:80", "bad address in 'fd00::1:80' (write IPv6 addresses in brackets)"),
        ("web:RX@::1:80", "bad address in '::1:80' (write IPv6 addresses in brackets)"),
        ("web:RX@2001:db8:0:0:0:0:0:1:443",
         "bad address in '2001:db8:0:0:0:0:0:1:443' (write IPv6 addresses in brackets)"),
        ("web:RX@[fd00::1:80", "missing ']' in '[fd00::1:80'"),
        ("web:RX@[fd00::1]", "missing port after '[fd00::1]'"),
        ("web:RX@[fd00::1]80", "missing port after '[fd00::1]'"),
        ("web:RX@[]:80", "missing address in '[]:80'"),
        ("web:RX@[fd00::zz]:80", "bad IPv6 address 'fd00::zz'"),
        ("web:RX@[1.2.3.4]:80", "bad IPv6 address '1.2.3.4'"),
        ("web:RX@[fe80::1%eth0]:80", "bad IPv6 address 'fe80::1%eth0'"),
        ("web:RX@[2001:db8::/129]:80", "prefix length 129 out of range 0-128"),
        ("web:RX@[2001:db8::/32]/32:80", "two prefix lengths in '[2001:db8::/32]/32:80'"),
        ("web:RX@[*/8]:80", "a wildcard address takes no prefix length"),
        ("we b:RX@*:80", "bad filter name 'we b'"),
    ],
)
def test_syntax_errors(text: str, why: str) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter(text)
    assert str(info.value) == f"bad filter '{text}': {why}"
    assert isinstance(info.value, TcpscopeError)


# --- the set: defaults, order, exclusions, several names --------------------


def test_defaults_come_first_and_given_follow_in_order() -> None:
    fs = FilterSet.parse(["http-rx:RX@*:80", "http-tx:TX@*:80"])
    assert fs.names == ("RX", "TX", "http-rx", "http-tx")
    assert [f.text for f in fs.filters] == [
        "RX:RX@*:*",
        "TX:TX@*:*",
        "http-rx:RX@*:80",
        "http-tx:TX@*:80",
    ]


def test_empty_set_has_the_defaults() -> None:
    fs = FilterSet()
    assert fs.names == ("RX", "TX")
    assert fs.match("RX", ip("198.18.0.1"), 80) == ["RX"]
    assert fs.match("TX", ip("fd00::1"), 443) == ["TX"]


def test_session_counted_in_every_matching_filter() -> None:
    fs = FilterSet.parse(["web:RX@*:80:443", "lan:RX@198.18.0.0/15:*", "other:TX@*:80"])
    assert fs.match("RX", ip("198.18.3.4"), 80) == ["RX", "web", "lan"]
    assert fs.match("RX", ip("203.0.113.1"), 443) == ["RX", "web"]
    assert fs.match("RX", ip("198.18.3.4"), 22) == ["RX", "lan"]
    assert fs.match("TX", ip("198.18.3.4"), 80) == ["TX", "other"]


@pytest.mark.parametrize("position", [0, 1, 2])
def test_exclusion_wins_wherever_it_stands(position: int) -> None:
    texts = ["ssh:RX@*:22", "all:RX@*:*"]
    texts.insert(position, ":RX@*:22")
    fs = FilterSet.parse(texts)
    assert fs.names == ("RX", "TX", "ssh", "all")  # the exclusion is no counter
    assert [f.text for f in fs.exclusions] == [":RX@*:22"]
    assert fs.match("RX", ip("198.18.0.1"), 22) == []  # not even the defaults
    assert fs.match("RX", ip("198.18.0.1"), 80) == ["RX", "all"]
    assert fs.match("TX", ip("198.18.0.1"), 22) == ["TX"]  # the exclusion is RX only


def test_readme_exclusions_both_directions() -> None:
    fs = FilterSet.parse([":RX@*:22", ":TX@*:22"])
    assert fs.match("RX", ip("198.18.0.1"), 22) == []
    assert fs.match("TX", ip("fd00::9"), 22) == []
    assert fs.match("TX", ip("fd00::9"), 23) == ["TX"]


def test_exclusion_by_network_and_family() -> None:
    fs = FilterSet.parse([":RX@[fd00::/8]:*"])
    assert fs.match("RX", ip("fd12::1"), 80) == []
    assert fs.match("RX", ip("198.18.0.1"), 80) == ["RX"]


def test_same_name_twice_is_an_error_naming_both() -> None:
    with pytest.raises(FilterSyntaxError) as info:
        FilterSet.parse(["web:RX@*:80", "db:TX@*:3306", "web:TX@*:80"])
    message = str(info.value)
    assert "'web' given twice" in message and "web:RX@*:80" in message
    assert "web:TX@*:80" in message and "\n" not in message


def test_several_exclusions_are_not_duplicates() -> None:
    fs = FilterSet.parse([":RX@*:22", ":RX@*:23", "web:RX@*:80"])
    assert fs.names == ("RX", "TX", "web")
    assert fs.match("RX", ip("198.18.0.1"), 22) == []


def test_unknown_direction_matches_nothing() -> None:
    assert FilterSet().match("XX", ip("198.18.0.1"), 80) == []


# ------------------------------------------- the same answers for arrays (bulk counts)

FILTER_TEXTS = [
    "web:RX@*:80:443", "db:TX@198.18.0.0/16:3306", "lan:RX@198.19.0.0/24:*",
    ":RX@198.19.0.7:*", "v6:RX@[fd00::/8]:80", "web:TX@198.18.5.5:80", "any:TX@*:*",
    ":TX@*:22", "two:RX@198.18.0.1:1,*:2",
]  # fmt: skip


@given(
    st.lists(st.sampled_from(FILTER_TEXTS), max_size=6),
    st.lists(
        st.tuples(
            st.booleans(),
            st.one_of(st.integers(0xC6120000, 0xC613FFFF), st.integers(0, 2**32 - 1)),
            st.sampled_from([1, 2, 22, 80, 443, 3306, 8080]),
        ),
        min_size=1,
        max_size=40,
    ),
)
def test_match_ipv4_gives_what_match_gives(
    texts: list[str], rows: list[tuple[bool, int, int]]
) -> None:
    named: dict[str, str] = {}  # one filter a name (a name given twice is refused)
    for text in texts:
        named.setdefault(text.split(":", 1)[0] or text, text)
    filters = FilterSet.parse(list(named.values()))
    outbound = np.array([r[0] for r in rows])
    remote = np.array([r[1] for r in rows], dtype=np.uint64)
    ports = np.array([r[2] for r in rows], dtype=np.uint64)
    numbers, names = filters.match_ipv4(outbound, remote, ports)
    for (tx, addr, port), number in zip(rows, numbers.tolist(), strict=True):
        expected = filters.match("TX" if tx else "RX", addr.to_bytes(4, "big"), port)
        assert names[number] == tuple(expected)


def test_match_ipv4_past_62_filters_goes_one_by_one() -> None:
    filters = FilterSet.parse([f"f{i}:RX@198.18.0.{i}:*" for i in range(70)])
    remote = np.array([0xC6120005, 0xC6120045, 0xC6130000], dtype=np.uint64)
    numbers, names = filters.match_ipv4(np.zeros(3, dtype=bool), remote, np.full(3, 80, np.uint64))
    assert [names[n] for n in numbers.tolist()] == [("RX", "f5"), ("RX", "f69"), ("RX",)]


@pytest.mark.parametrize("top", [1, 7, 2**16 - 1, 2**16, 2**40])
def test_codes_are_numbered_as_np_unique_numbers_them(top: int) -> None:
    # Below 2**16 by counting, above by sorting: the same places either way.
    rng = np.random.default_rng(top)
    codes = rng.integers(0, top, 5000, dtype=np.int64)
    codes[:3] = [0, top - 1, top // 2]
    unique, places = numbered(codes)
    expected_unique, expected_places = np.unique(codes, return_inverse=True)
    assert unique.tolist() == expected_unique.tolist()
    assert places.tolist() == expected_places.tolist() and places.dtype == np.intp
    assert numbered(np.zeros(0, dtype=np.int64))[1].size == 0


def test_match_ipv4_with_twenty_filters_numbers_by_sorting() -> None:
    # 20 filters: codes up to 2**21, past what is numbered by counting.
    filters = FilterSet.parse([f"f{i}:RX@198.18.0.{i}:*" for i in range(20)])
    remote = np.array([0xC6120013, 0xC6120002, 0xC6130000, 0xC6120013], dtype=np.uint64)
    numbers, names = filters.match_ipv4(np.zeros(4, dtype=bool), remote, np.full(4, 80, np.uint64))
    got = [names[n] for n in numbers.tolist()]
    assert got == [("RX", "f19"), ("RX", "f2"), ("RX",), ("RX", "f19")]
