"""Which ways through the engine a run takes: the one place that decides.

The exact path — decode each packet, look its session up by the full 4-tuple,
step the states, tell the analyzer — defines every behaviour. The bulk paths
are numpy shortcuts around it and must give the same output byte for byte:

| tool   | --paths          | prefilter   | plain items | light handshakes |
|--------|------------------|-------------|-------------|------------------|
| miruo  | bulk (default)   | "follow"    | yes         | no               |
| tcpeek | bulk (default)   | "handshake" | no          | yes              |
| tcpeek | bulk with -c 1/2 | "handshake" | no          | no               |
| both   | exact            | none        | no          | no               |
| both   | shadow           | bulk and exact side by side (cli.shadow)   |

- prefilter (track.prefilter): a numpy pass over each batch skips the packets
  that cannot matter: "follow", those of sessions miruo does not track;
  "handshake", those of handshakes tcpeek has judged. A batch it cannot pay
  for (a table of every session, nothing to skip: miruo -L0) goes whole to
  the exact path instead (track.prefilter.PrefilterGate).
- plain items (Tracker.feed_plain): plain IPv4 packets reach the tracker as the
  header fields the numpy pass read, not as frames to decode; quiet ones are
  held in brief when the listener has no `on_quiet`.
- light handshakes (track.light): plain SYN, SYN/ACK, ACK handshakes followed
  as numpy rows across batches; not with -c, where a bad checksum must drop
  its packet, so every frame the prefilter keeps is decoded and checked.
- shadow: both engines on the same batches; the run stops with exit status 3
  at the first byte of output that differs.

What the analyzer needs is not decided here but declared by its hooks
(analyze.chain): the tracker holds quiet segments in brief only when its
listener has no `on_quiet`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tcpscope.errors import UsageError

Mode = Literal["exact", "bulk", "shadow"]
MODES: tuple[Mode, ...] = ("exact", "bulk", "shadow")
Tool = Literal["miruo", "tcpeek"]

PREFILTER_OF: dict[Tool, str] = {
    "miruo": "follow",  # skip in bulk the packets of sessions not tracked
    "tcpeek": "handshake",  # skip in bulk what cannot decide a handshake
}


@dataclass(frozen=True)
class Paths:
    """The ways one engine takes (a shadow run has two engines: bulk and exact)."""

    name: Literal["exact", "bulk"]
    prefilter: str | None  # a key of engine.PREFILTERS, or None: every packet exact
    plain_items: bool  # plain packets reach the tracker as header fields
    light: bool  # plain handshakes followed as numpy rows (needs a judge)

    @property
    def bulk(self) -> bool:
        return self.prefilter is not None


EXACT = Paths("exact", None, False, False)  # every packet through decode and the tracker


def parse_mode(text: str) -> Mode:
    for mode in MODES:
        if text == mode:
            return mode
    raise UsageError(f"--paths: '{text}' is not one of {', '.join(MODES)}")


def select_paths(tool: Tool, mode: Literal["exact", "bulk"], checksum_level: int = 0) -> Paths:
    """The paths for a tool, a --paths mode (a shadow run asks for both) and -c."""
    if mode == "exact":
        return EXACT
    prefilter = PREFILTER_OF[tool]
    if tool == "miruo":  # untracked packets skipped; plain ones fed as header fields
        return Paths("bulk", prefilter, True, False)
    # judged handshakes' packets skipped; plain handshakes followed as numpy rows,
    # unless -c needs every other frame decoded and checked
    return Paths("bulk", prefilter, False, not checksum_level)
