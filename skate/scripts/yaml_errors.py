"""One line for a YAML file that does not parse (shared by the ``serve`` and ``rllib`` CLIs)."""


def describe(path: str, error) -> str:
    """``<path>: not valid YAML at line L, column C: <problem>`` for a ``yaml.YAMLError``.

    >>> import yaml
    >>> try:
    ...     yaml.safe_load("a: [1, 2")
    ... except yaml.YAMLError as e:
    ...     print(describe("f.yaml", e))
    f.yaml: not valid YAML at line 1, column 9: expected ',' or ']', but got '<stream end>'
    """
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    return f"{path}: not valid YAML{where}: {problem}"
