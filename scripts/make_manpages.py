"""Write man/miruo.1, man/tcpeek.1 and man/tcpeekstat.1 from the option tables.

Run after changing an option or a page's prose (tests/cli/test_manpages.py fails
until the files in man/ are current):  PYTHONPATH=src python scripts/make_manpages.py
"""

from __future__ import annotations

from pathlib import Path

from tcpscope.cli.manual import pages

MAN_DIR = Path(__file__).resolve().parent.parent / "man"


def main() -> None:
    MAN_DIR.mkdir(exist_ok=True)
    for name, text in pages().items():
        (MAN_DIR / name).write_text(text, encoding="ascii")
        print(MAN_DIR / name)


if __name__ == "__main__":
    main()
