# Importing the package installs the Ray alias (SKATE_TEST_AGAINST_RAY=1),
# also in worker processes that import test modules to unpickle functions.
from tests import _skate_alias  # noqa: F401
