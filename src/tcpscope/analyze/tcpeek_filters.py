"""tcpeek's session filters: which named counters a finished handshake goes into.

Grammar (one command-line word per filter)::

    NAME:DIR@ADDR[/PREFIX]:PORT[:PORT...][,ADDR[/PREFIX]:PORT[:PORT...]...]

DIR is ``RX`` (the SYN arrives at this host) or ``TX`` (the SYN leaves it).
ADDR is the remote address: ``*`` or ``%`` for any, IPv4 dotted quad, or IPv6
in brackets (``[2001:db8::/32]``, ``[fd00::1]``, ``[2001:db8::]/32``); a
prefix length turns it into a network. PORT is the server port of the SYN,
``*``/``%`` for any. An empty NAME makes an exclusion filter: a session it
matches is counted nowhere, wherever the exclusion stands.

Everything is parsed once into integers and masks so that `FilterSet.match`,
which runs once per finished handshake, is a few integer operations.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from tcpscope.errors import FilterSyntaxError

DIRECTIONS = ("RX", "TX")
WILDCARDS = ("*", "%")
DEFAULT_FILTER_TEXTS = ("RX:RX@*:*", "TX:TX@*:*")

# Address length in bytes a group applies to; ANY_FAMILY matches both.
ANY_FAMILY = 0


class AddrPortGroup:
    """One ``ADDR[/PREFIX]:PORT[:PORT...]`` group, precomputed for matching."""

    __slots__ = ("family", "mask", "network", "ports")

    family: int  # ANY_FAMILY, 4 or 16 (the packed address length)
    network: int
    mask: int
    ports: frozenset[int] | None  # None = any port

    def __init__(self, family: int, network: int, mask: int, ports: frozenset[int] | None) -> None:
        self.family = family
        self.network = network
        self.mask = mask
        self.ports = ports

    def matches(self, addr_len: int, addr_int: int, port: int) -> bool:
        if self.family and self.family != addr_len:
            return False
        if addr_int & self.mask != self.network:
            return False
        return self.ports is None or port in self.ports

    def __repr__(self) -> str:
        ports = "*" if self.ports is None else sorted(self.ports)
        return (
            f"AddrPortGroup(family={self.family}, network={self.network:#x}, "
            f"mask={self.mask:#x}, ports={ports})"
        )


class Filter:
    """A parsed filter. `name` is "" for an exclusion filter."""

    __slots__ = ("direction", "groups", "name", "text")

    name: str
    direction: str
    groups: tuple[AddrPortGroup, ...]
    text: str

    def __init__(
        self, name: str, direction: str, groups: Sequence[AddrPortGroup], text: str
    ) -> None:
        self.name = name
        self.direction = direction
        self.groups = tuple(groups)
        self.text = text

    @property
    def is_exclusion(self) -> bool:
        return not self.name

    def matches(self, direction: str, addr_len: int, addr_int: int, port: int) -> bool:
        if direction != self.direction:
            return False
        for group in self.groups:
            if group.matches(addr_len, addr_int, port):
                return True
        return False

    def __repr__(self) -> str:
        return f"Filter({self.text!r})"


def _fail(text: str, why: str) -> FilterSyntaxError:
    return FilterSyntaxError(f"bad filter '{text}': {why}")


def _parse_port(text: str, word: str) -> int | None:
    """One PORT: None for a wildcard, else 1..65535."""
    if word in WILDCARDS:
        return None
    if not word:
        raise _fail(text, "empty port")
    if not (word.isascii() and word.isdigit()):
        raise _fail(text, f"bad port '{word}'")
    port = int(word)
    if not 1 <= port <= 65535:
        raise _fail(text, f"port {port} out of range 1-65535")
    return port


def _parse_ports(text: str, words: list[str]) -> frozenset[int] | None:
    if not words:
        raise _fail(text, "missing port")
    ports: set[int] = set()
    wildcard = False
    for word in words:
        port = _parse_port(text, word)
        if port is None:
            wildcard = True
        else:
            ports.add(port)
    return None if wildcard else frozenset(ports)


def _parse_prefix(text: str, word: str, max_len: int) -> int:
    if not (word.isascii() and word.isdigit()):
        raise _fail(text, f"bad prefix length '{word}'")
    prefix = int(word)
    if prefix > max_len:
        raise _fail(text, f"prefix length {prefix} out of range 0-{max_len}")
    return prefix


def _network(text: str, addr: str, prefix_word: str | None, version: int) -> tuple[int, int, int]:
    """(family, network, mask) for an address with an optional prefix length."""
    max_len = 32 if version == 4 else 128
    prefix = max_len if prefix_word is None else _parse_prefix(text, prefix_word, max_len)
    try:
        # '%' would be read as an IPv6 scope id, which has no meaning here
        if "%" in addr:
            raise ValueError(addr)
        parsed = ipaddress.IPv4Address(addr) if version == 4 else ipaddress.IPv6Address(addr)
    except ValueError:
        kind = "IPv4" if version == 4 else "IPv6"
        raise _fail(text, f"bad {kind} address '{addr}'") from None
    mask = ((1 << max_len) - 1) ^ ((1 << (max_len - prefix)) - 1)
    return (4 if version == 4 else 16), int(parsed) & mask, mask


def _looks_like_ipv6(addr: str) -> bool:
    return bool(addr) and "." not in addr and all(c in "0123456789abcdefABCDEF" for c in addr)


def _address(text: str, addr: str, prefix_word: str | None, version: int) -> tuple[int, int, int]:
    """Like _network, with the wildcards."""
    if addr in WILDCARDS:
        if prefix_word is not None:
            raise _fail(text, "a wildcard address takes no prefix length")
        return ANY_FAMILY, 0, 0
    return _network(text, addr, prefix_word, version)


def _parse_group(text: str, group: str) -> AddrPortGroup:
    if not group:
        raise _fail(text, "empty address:port group")
    if group.startswith("["):
        close = group.find("]")
        if close < 0:
            raise _fail(text, f"missing ']' in '{group}'")
        addr, slash, prefix = group[1:close].partition("/")
        prefix_word: str | None = prefix if slash else None
        rest = group[close + 1 :]
        if rest.startswith("/"):  # the prefix may also follow the bracket: [2001:db8::]/32
            if prefix_word is not None:
                raise _fail(text, f"two prefix lengths in '{group}'")
            prefix_word, colon, ports = rest[1:].partition(":")
            rest = colon + ports
        if not rest.startswith(":"):
            raise _fail(text, f"missing port after '{group[: close + 1]}'")
        if not addr:
            raise _fail(text, f"missing address in '{group}'")
        family, network, mask = _address(text, addr, prefix_word, 6)
        return AddrPortGroup(family, network, mask, _parse_ports(text, rest[1:].split(":")))

    addr_word, colon, ports_text = group.partition(":")
    addr, slash, prefix = addr_word.partition("/")
    if addr not in WILDCARDS and "." not in addr and (
        "::" in group or (group.count(":") >= 2 and _looks_like_ipv6(addr))
    ):
        raise _fail(text, f"bad address in '{group}' (write IPv6 addresses in brackets)")
    if not addr:
        raise _fail(text, f"missing address in '{group}'")
    family, network, mask = _address(text, addr, prefix if slash else None, 4)
    if not colon:
        raise _fail(text, f"missing port after '{group}'")
    return AddrPortGroup(family, network, mask, _parse_ports(text, ports_text.split(":")))


def _valid_name(name: str) -> bool:
    return name.isprintable() and not any(c.isspace() for c in name)


def parse_filter(text: str) -> Filter:
    """Parse one filter expression; raise FilterSyntaxError naming it if malformed."""
    head, at, body = text.partition("@")
    if not at:
        raise _fail(text, "missing '@'")
    name, colon, direction = head.partition(":")
    if not colon:
        raise _fail(text, "expected NAME:DIR before '@'")
    if not _valid_name(name):
        raise _fail(text, f"bad filter name '{name}'")
    if direction not in DIRECTIONS:
        raise _fail(text, f"bad direction '{direction}' (RX or TX)")
    if not body:
        raise _fail(text, "missing address:port after '@'")
    groups = [_parse_group(text, group) for group in body.split(",")]
    return Filter(name, direction, groups, text)


# Codes below this are numbered by counting (O(n)) rather than sorting.
_COUNTED_CODES = 1 << 16


def numbered(codes: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.intp]]:
    """np.unique(codes, return_inverse=True) for non-negative codes: the distinct
    codes, sorted, and each code's place among them. With a few filters the codes
    are small, and counting them is linear where np.unique sorts (a SYN flood's
    million timeouts: ~5 ms against ~35 ms)."""
    if not codes.size or int(codes.max()) >= _COUNTED_CODES:
        unique, places = np.unique(codes, return_inverse=True)
        return unique, places.reshape(-1).astype(np.intp)
    present = np.bincount(codes) > 0
    place_of = np.cumsum(present, dtype=np.intp) - 1
    return np.flatnonzero(present).astype(np.int64), place_of[codes]


class FilterSet:
    """The defaults (RX, TX), the named filters in order, and the exclusions apart.

    Several filters may share a name (e.g. one RX and one TX); the name is then
    one counter and a session is counted in it once.
    """

    __slots__ = ("_by_direction", "_exclusions", "filters", "names")

    filters: tuple[Filter, ...]
    names: tuple[str, ...]

    def __init__(self, filters: Iterable[Filter] = ()) -> None:
        given = list(filters)
        defaults = [parse_filter(t) for t in DEFAULT_FILTER_TEXTS]
        named = defaults + [f for f in given if not f.is_exclusion]
        self.filters = tuple(named)
        self.names = tuple(dict.fromkeys(f.name for f in named))
        self._exclusions = tuple(f for f in given if f.is_exclusion)
        by_direction: dict[str, list[tuple[str, tuple[AddrPortGroup, ...]]]] = {
            d: [] for d in DIRECTIONS
        }
        for f in named:
            by_direction[f.direction].append((f.name, f.groups))
        self._by_direction = {d: tuple(v) for d, v in by_direction.items()}

    @classmethod
    def parse(cls, texts: Iterable[str]) -> FilterSet:
        """The filters of a command line. A name given twice is an error: it would
        be one counter for two filters without a word (list several groups after
        commas in one filter instead)."""
        filters = [parse_filter(t) for t in texts]
        seen: dict[str, str] = {}
        for f in filters:
            if f.is_exclusion:
                continue
            if f.name in seen:
                raise FilterSyntaxError(
                    f"filter name '{f.name}' given twice ('{seen[f.name]}', '{f.text}'):"
                    " give each filter its own name"
                )
            seen[f.name] = f.text
        return cls(filters)

    @property
    def exclusions(self) -> tuple[Filter, ...]:
        return self._exclusions

    def match_ipv4(
        self, outbound: npt.NDArray[np.bool_], remote: npt.NDArray[np.uint64],
        server_port: npt.NDArray[np.uint64],
    ) -> tuple[npt.NDArray[np.intp], list[tuple[str, ...]]]:  # fmt: skip
        """`match` for arrays of IPv4 handshakes (TX where `outbound`, else RX):
        a number per handshake and, for each number, the names `match` gives."""
        filters = [*self._exclusions, *self.filters]
        if len(filters) > 62:  # one bit each in an int64: past that, one by one
            return self._match_each(outbound, remote, server_port)
        codes = np.where(outbound, 1, 0).astype(np.int64)
        for bit, f in enumerate(filters, start=1):
            hit = outbound if f.direction == "TX" else ~outbound
            any_group = np.zeros(remote.size, dtype=bool)
            for g in f.groups:
                if g.family not in (ANY_FAMILY, 4):
                    continue
                ok = (remote & np.uint64(g.mask)) == np.uint64(g.network)
                if g.ports is not None:
                    ok &= np.isin(server_port, np.array(sorted(g.ports), dtype=np.uint64))
                any_group |= ok
            codes |= (hit & any_group).astype(np.int64) << bit
        unique, numbers = numbered(codes)
        names: list[tuple[str, ...]] = []
        excluded = len(self._exclusions)
        for code in unique.tolist():
            direction = "TX" if code & 1 else "RX"
            if code >> 1 & ((1 << excluded) - 1):
                names.append(())
                continue
            matched = [
                f.name for bit, f in enumerate(self.filters, start=excluded + 1)
                if code >> bit & 1 and f.direction == direction
            ]  # fmt: skip
            names.append(tuple(dict.fromkeys(matched)))
        return numbers, names

    def _match_each(
        self, outbound: npt.NDArray[np.bool_], remote: npt.NDArray[np.uint64],
        server_port: npt.NDArray[np.uint64],
    ) -> tuple[npt.NDArray[np.intp], list[tuple[str, ...]]]:  # fmt: skip
        numbers: dict[tuple[str, ...], int] = {}
        out = np.zeros(remote.size, dtype=np.intp)
        for i, (tx, addr, port) in enumerate(
            zip(outbound.tolist(), remote.tolist(), server_port.tolist(), strict=True)
        ):
            names = tuple(self.match("TX" if tx else "RX", addr.to_bytes(4, "big"), port))
            out[i] = numbers.setdefault(names, len(numbers))
        return out, list(numbers)

    def match(self, direction: str, remote: bytes, server_port: int) -> list[str]:
        """Names of the named filters the session matches, or [] if any exclusion does.

        `remote` is the remote (not local) packed address; `server_port` is the
        destination port of the SYN.
        """
        addr_len = len(remote)
        addr_int = int.from_bytes(remote, "big")
        for exclusion in self._exclusions:
            if exclusion.matches(direction, addr_len, addr_int, server_port):
                return []
        names: list[str] = []
        for name, groups in self._by_direction.get(direction, ()):
            for group in groups:
                if group.matches(addr_len, addr_int, server_port):
                    if name not in names:
                        names.append(name)
                    break
        return names
