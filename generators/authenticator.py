"""``tasker generate authenticator``: a pluggable API authenticator (``web.authenticator``) and its test."""

from __future__ import annotations

import os

from .core import (
    GeneratedFile,
    Generation,
    absolute,
    camel_case,
    check_name,
    conftest_file,
    import_line,
    module_name,
    project_root,
    render,
    run_from,
)


def authenticator_files(
    name: str,
    *,
    directory: str | os.PathLike[str] = "auth",
    tests_directory: str | os.PathLike[str] = "tests/auth",
) -> Generation:
    """``<directory>/<name>_authenticator.py`` (a ``tasker.web.Auth`` subclass with API keys and roles) and its test."""
    snake = check_name(name, "authenticator", strip_suffix="authenticator")
    class_name = camel_case(snake) + "Authenticator"
    module_file = absolute(directory) / f"{snake}_authenticator.py"
    test_file = absolute(tests_directory) / f"test_{snake}_authenticator.py"
    root = project_root(module_file, test_file)
    module = module_name(root, module_file, "--directory")
    env_var = f"{snake.upper()}_API_KEYS"
    context = {
        "class_name": class_name,
        "env_var": env_var,
        "import_path": f"{module}:{class_name}",
        "authenticator_import": import_line(module, ["ROLES", class_name]),
    }
    return Generation(
        files=[
            GeneratedFile(module_file, render("authenticator.py.j2", **context)),
            GeneratedFile(test_file, render("test_authenticator.py.j2", **context)),
            conftest_file(root),
        ],
        notes=[
            f"configure it:  web: {{authenticator: {module}:{class_name}}}",
            f"give it keys:  export {env_var}='<key>=viewer,<other key>=operator'",
            f"test it:       {run_from(root)}python -m pytest {test_file.relative_to(root).as_posix()}",
        ],
    )
