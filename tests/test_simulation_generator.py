"""The log generator: deterministic for a seed, ECS documents, and a truth file consistent with its logs."""

from __future__ import annotations

import json
from datetime import date

from ailog.simulation import generate


def test_same_seed_same_bytes_and_truth_matches_the_logs(tmp_path):
    a = generate(date(2026, 11, 2), 3, 4, tmp_path / "a", apps=6)
    b = generate(date(2026, 11, 2), 3, 4, tmp_path / "b", apps=6)
    assert [p.read_bytes() for p in a.files] == [p.read_bytes() for p in b.files]
    assert a.truth == b.truth and a.events == sum(len(p.read_bytes().splitlines()) for p in a.files)
    docs = [json.loads(line) for p in a.files for line in p.read_text().splitlines()]
    assert all(d["@timestamp"].endswith("Z") and d["message"] and d["service"]["name"] for d in docs)
    assert [d["@timestamp"] for d in docs] == sorted(d["@timestamp"] for d in docs)
    apps = {d["service"]["name"] for d in docs}
    kinds = {i["kind"] for i in a.truth["incidents"]}
    assert {"spike", "burst", "new", "cascade"} <= kinds and a.truth["recurring"]
    for incident in a.truth["incidents"]:
        assert set(incident["apps"]) <= apps
        during = [d for d in docs if incident["start"][:16] <= d["@timestamp"][:16] <= incident["end"][:16]
                  and d["service"]["name"] in incident["apps"] and d["error"]["type"] == incident["error_type"]]
        assert during, incident["id"]
