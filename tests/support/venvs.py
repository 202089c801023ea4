"""A throwaway virtual environment that sees the running interpreter's installed packages, for wheel tests."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path


def venv_with_current_packages(path: Path) -> Path:
    """Create a venv at ``path`` whose ``sys.path`` ends with this interpreter's site-packages; its python.

    ``venv --system-site-packages`` would expose the *base* interpreter's packages, which lack the
    dependencies when the tests themselves run from a virtual environment (``pip install -e '.[test]'`` in a
    fresh venv). A ``.pth`` file listing this interpreter's site-packages directories works in both cases;
    being plain path entries, their own ``.pth`` files (such as the editable install of this repository)
    are not processed, so ``tasker`` is only importable from what gets installed into the new venv.
    """
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    python = path / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    ours = [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and Path(p).is_dir()]
    ours.append(sysconfig.get_paths()["purelib"])
    (Path(purelib) / "parent_environment.pth").write_text("\n".join(dict.fromkeys(ours)) + "\n")
    return python
