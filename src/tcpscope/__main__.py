"""`python -m tcpscope miruo|tcpeek|tcpeekstat ...`"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    commands = ("miruo", "tcpeek", "tcpeekstat")
    if not args or args[0] not in commands:
        sys.stderr.write(f"usage: python -m tcpscope {{{'|'.join(commands)}}} [option]...\n")
        return 1
    name, rest = args[0], args[1:]
    if name == "miruo":
        from tcpscope.cli import miruo as command
    elif name == "tcpeek":
        from tcpscope.cli import tcpeek as command  # type: ignore[no-redef]
    else:
        from tcpscope.cli import tcpeekstat as command  # type: ignore[no-redef]
    return command.main(rest)


if __name__ == "__main__":
    sys.exit(main())
