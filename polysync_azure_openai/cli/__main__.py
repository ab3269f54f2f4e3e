"""``python -m polysync_azure_openai.cli``, as the console script."""

from . import main

raise SystemExit(main())
