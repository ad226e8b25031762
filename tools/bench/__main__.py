import importlib
import pkgutil
import sys
from pathlib import Path


def _names():
    return sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))


def main(argv):
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in _names():
        print("usage: python -m tools.bench NAME [ARGS]\nbenchmarks: " + ", ".join(_names()), file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(f"tools.bench.{argv[0]}")
    return module.main(argv[1:]) or 0


sys.exit(main(sys.argv[1:]))
