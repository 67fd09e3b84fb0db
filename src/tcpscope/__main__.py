"""`python -m tcpscope miruo|tcpeek|tcpeekstat ...`"""

from __future__ import annotations

import sys

from tcpscope.cli import launch


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    commands = launch.COMMANDS
    if not args or args[0] not in commands:
        sys.stderr.write(f"usage: python -m tcpscope {{{'|'.join(commands)}}} [option]...\n")
        return 1
    return launch.run(args[0], args[1:])


if __name__ == "__main__":
    launch.exit_now(main())
