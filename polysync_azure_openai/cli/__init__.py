"""``polysync-azure-openai``: the demo, the local emulator and the operator commands.

Also home of what only these commands use: the platform file (``config_file``), the batch
input checks (``batch_input``) and a stand-in for the Polysync host (``host``).
"""

# Bound here, not lazily: importing the submodule ``cli.main`` would otherwise rebind the
# package's ``main`` to the module and break the console script ``polysync_azure_openai.cli:main``.
from .main import main

__all__ = ["main"]
