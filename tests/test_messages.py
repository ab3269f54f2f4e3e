"""Every bad-input message of tests/test_validation.py, word for word.

test_validation checks that each message names the field, the problem and the fix; this suite
pins the whole sentence, because its wording is what a user reads to repair a platform or a job
(a dropped clause or a garbled hint is a regression even when the field is still named). The
texts live in tests/golden/validation_messages.json; after an intended wording change, refresh
them with ``POLYSYNC_UPDATE_GOLDEN=1 python -m pytest tests/test_messages.py`` and review the
diff like any other change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pluggy
import pytest

from polysync_azure_openai.emulator import Emulator

from .test_validation import ROWS, Row, refusal

GOLDEN = Path(__file__).parent / "golden" / "validation_messages.json"
UPDATE = os.environ.get("POLYSYNC_UPDATE_GOLDEN") == "1"


def _stable(message: str, emu: Emulator) -> str:
    """The message with what differs between runs (the emulator's port, its scratch paths) named."""
    message = message.replace(emu.url, "https://EMULATOR")
    for name, value in emu.managed_identity_environment().items():
        message = message.replace(value, f"${name}")
    return message


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_the_message_reads_word_for_word(
    pm: pluggy.PluginManager, emu: Emulator, row: Row, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = _stable(refusal(pm, emu, row, monkeypatch), emu)
    golden = json.loads(GOLDEN.read_text(encoding="utf-8")) if GOLDEN.exists() else {}
    if UPDATE:
        golden[row.id] = message
        GOLDEN.write_text(json.dumps(golden, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    assert row.id in golden, f"no golden text for {row.id}: refresh with POLYSYNC_UPDATE_GOLDEN=1"
    assert message == golden[row.id]


def test_every_golden_text_belongs_to_a_row() -> None:
    assert set(json.loads(GOLDEN.read_text(encoding="utf-8"))) == {row.id for row in ROWS}
