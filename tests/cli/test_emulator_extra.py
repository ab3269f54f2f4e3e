"""Without the ``emulator`` extra, the commands that need it say in one line what to install."""

from __future__ import annotations

import subprocess
import sys

import pytest

INSTALL = "pip install 'polysync-azure-openai[emulator]'"

# A process in which trustme is not installed, as on a production worker: a finder that answers
# "no such module" before any other looks.
WITHOUT_TRUSTME = """
import sys
from importlib.abc import MetaPathFinder


class NoTrustme(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "trustme" or name.startswith("trustme."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoTrustme())
from polysync_azure_openai.cli import main

sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["demo"], id="demo"),
        pytest.param(["emulator"], id="emulator"),
        pytest.param(["check", "--emulator"], id="check"),
        pytest.param(["import", "--emulator", "--json"], id="import-json"),
        pytest.param(["batch", "download", "file-abc", "--out", "-", "--emulator"], id="batch-download"),
    ],
)
def test_without_trustme_the_error_names_the_extra(args: list[str]) -> None:
    done = subprocess.run([sys.executable, "-c", WITHOUT_TRUSTME, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"error: the embedded Azure emulator is not installed; install it with: {INSTALL}"]


def test_without_trustme_a_platform_file_still_works() -> None:
    # Only the emulator needs the extra: a command on a platform file gets as far as reading it.
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_TRUSTME, "import", "--config", "/nonexistent/platform.toml"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "does not exist. Check the path given to --config" in done.stderr and INSTALL not in done.stderr
