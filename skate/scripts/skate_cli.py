"""The ``skate`` command.

    skate microbenchmark [--filter NAME] [--duration S]   # Ray's microbenchmark lines
    skate --version
"""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="skate", description="Skate command line.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command")
    sub.add_parser("microbenchmark", help="run the core microbenchmarks (Ray's definitions)",
                   add_help=False)
    args, rest = p.parse_known_args(argv)
    if args.version:
        from skate import __version__

        print(f"skate {__version__}")
        return 0
    if args.command == "microbenchmark":
        from skate.scripts import microbenchmark

        return microbenchmark.main(["--backend", "skate", *rest]) or 0
    p.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
