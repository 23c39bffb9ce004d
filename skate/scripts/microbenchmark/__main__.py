"""Entry point of ``python -m skate.scripts.microbenchmark`` and of running it by path.

Run by path (a directory, or this file), there is no parent package, so relative
imports would fail, and the Ray virtualenv cannot import skate to supply one. The
package is then loaded from this directory under a private name with importlib, which
leaves sys.path alone apart from dropping this directory from it (so that a module
here, say ``tasks.py``, can never shadow a real module).
"""

import os
import sys

if __package__:
    from . import main
else:
    import importlib.util

    _HERE = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or ".") == _HERE:
        sys.path.pop(0)
    _spec = importlib.util.spec_from_file_location(
        "skate_microbenchmark",
        os.path.join(_HERE, "__init__.py"),
        submodule_search_locations=[_HERE],
    )
    _pkg = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = _pkg
    _spec.loader.exec_module(_pkg)
    main = _pkg.main

main()
sys.exit(0)
