"""Concurrency soak: 16 threads x 2 platforms with different credentials x 50 mixed calls."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter

import pluggy

from polysync_azure_openai.emulator import Emulator
from polysync_azure_openai.jobs import BATCH, CHAT, EMBEDDING

from .conftest import job, sp_platform

THREADS = 16
CALLS = 50


def test_soak_two_platforms_sixteen_threads(pm: pluggy.PluginManager, emu: Emulator) -> None:
    second_id = str(uuid.uuid4())
    emu.add_secret_client(second_id, "soak-second-secret")
    platforms = {
        emu.client_id: sp_platform(emu, name="soak-a"),
        second_id: sp_platform(emu, name="soak-b", Client_Id=second_id, Client_Secret="soak-second-secret"),
    }
    line = json.dumps(
        {
            "custom_id": "t",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-batch", "messages": [{"role": "user", "content": "hi"}]},
        }
    )
    batch_ids = {}
    for client_id, platform in platforms.items():
        submitted = pm.hook.submit(
            platform=platform,
            job=job(BATCH, "gpt-4o-batch::batch"),
            parameters={"input_file_id": emu.add_file(line)},
            run_key=f"soak-{client_id}",
        )
        batch_ids[client_id] = submitted.run_id
    emu.clear_requests()
    errors: list[str] = []
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS * len(platforms))

    def worker(client_id: str, n: int) -> None:
        platform = platforms[client_id]
        barrier.wait()
        for i in range(CALLS):
            kind = (n + i) % 3
            # The prompt names the platform so the emulator's record shows whose call it was.
            if kind == 0:
                result = pm.hook.submit(
                    platform=platform, job=job(CHAT, "gpt-4o"), parameters={"user_prompt": f"from {client_id}"}, run_key="r"
                )
            elif kind == 1:
                result = pm.hook.submit(
                    platform=platform, job=job(EMBEDDING, "embed-small"), parameters={"input": f"from {client_id}"}, run_key="r"
                )
            else:
                result = pm.hook.get_status(platform=platform, job=job(BATCH, "gpt-4o-batch::batch"), run_id=batch_ids[client_id])
            with lock:
                statuses[result.status] += 1
                if result.status not in ("Success", "Running"):
                    errors.append(result.message or "")

    threads = [threading.Thread(target=worker, args=(cid, n)) for cid in platforms for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert sum(statuses.values()) == THREADS * len(platforms) * CALLS
    data_plane = [r for r in emu.requests if r.kind in ("chat", "embeddings", "batches.get")]
    assert len(data_plane) == THREADS * len(platforms) * CALLS
    for request in data_plane:
        if request.kind == "batches.get":
            owner = next(cid for cid, bid in batch_ids.items() if request.path.endswith(bid))
        else:
            owner = next(cid for cid in platforms if cid in request.body.decode())
        assert request.client_id == owner  # every request carried its own platform's credential
    for client_id in platforms:
        assert emu.token_requests(client_id=client_id) == 1
    connections = {r.connection_id for r in data_plane}
    assert len(connections) <= THREADS * len(platforms)  # pooled, never one per call
