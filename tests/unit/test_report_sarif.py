"""SARIF: valid against the official 2.1.0 schema, one rule per finding class, stable
fingerprints, most severe first under truncation."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator

from mmioscan.core.findings import FINDING_CLASSES, finding_class
from mmioscan.core.model import Site
from mmioscan.report import sarif

from .report_results import ROOT, big_result, sample_result, sample_sites

SCHEMA = Path(__file__).resolve().parent.parent / "fixtures" / "schemas" / "sarif-schema-2.1.0.json"


@pytest.fixture(scope="module")
def validator() -> Draft4Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    Draft4Validator.check_schema(schema)
    return Draft4Validator(schema)


def _log(text: str, validator: Draft4Validator) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(text)
    errors = sorted(validator.iter_errors(doc), key=lambda err: list(err.path))
    assert not errors, "\n".join(f"{list(err.path)}: {err.message}" for err in errors[:5])
    return doc


def _keys(doc: dict[str, Any]) -> list[tuple[str, str, int]]:
    out = []
    for res in doc["runs"][0]["results"]:
        loc = res["locations"][0]["physicalLocation"]
        out.append((res["ruleId"], loc["artifactLocation"]["uri"], loc["region"]["startLine"]))
    return out


VP = "drivers/virtio/virtio_pci_modern_dev.c"
E1K = "drivers/net/ethernet/intel/e1000e/netdev.c"
HPET = "arch/x86/kernel/hpet.c"
EXPECTED = [
    ("raw-iomem-deref", HPET, 50),
    ("unsupported-mmio", "drivers/odd/odd%20main.c", 12),
    ("hot-ve-mmio", HPET, 30), ("hot-ve-mmio", E1K, 100), ("hot-ve-mmio", VP, 52),
    ("ve-mmio", E1K, 120), ("ve-mmio", E1K, 130), ("ve-mmio", VP, 60),
    ("port-io", HPET, 44),
]


def test_valid_and_most_severe_first(validator: Draft4Validator) -> None:
    doc = _log(sarif.render(sample_result()), validator)
    assert doc["version"] == "2.1.0"
    # Paravirt (vp:40), not assessed (regmap e1k:140), #if 0 (e1k:150) and not built
    # (idxd, reachable False) are not results.
    assert _keys(doc) == EXPECTED


def test_unreachable_on_request(validator: Draft4Validator) -> None:
    doc = _log(sarif.render(sample_result(), include_unreachable=True), validator)
    keys = _keys(doc)
    assert keys[:3] == [EXPECTED[0], ("unsupported-mmio", "drivers/dma/idxd/submit.c", 70),
                        EXPECTED[1]]
    assert doc["runs"][0]["properties"]["unreachable_findings_excluded"] == 0


def test_rules(validator: Draft4Validator) -> None:
    doc = _log(sarif.render(sample_result()), validator)
    driver = doc["runs"][0]["tool"]["driver"]
    assert driver["name"] == "mmioscan" and driver["version"]
    rules = driver["rules"]
    assert [r["id"] for r in rules] == [c.id for c in FINDING_CLASSES]
    levels = {r["id"]: r["defaultConfiguration"]["level"] for r in rules}
    assert levels == {"raw-iomem-deref": "error", "unsupported-mmio": "error",
                      "hot-ve-mmio": "warning", "ve-mmio": "note", "port-io": "note"}
    for rule in rules:
        assert rule["name"] and rule["shortDescription"]["text"]
        assert rule["fullDescription"]["text"]
        assert rule["help"]["text"] and rule["help"]["markdown"]
    for res in doc["runs"][0]["results"]:
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["level"] == levels[res["ruleId"]]


def test_locations_and_root(validator: Draft4Validator) -> None:
    doc = _log(sarif.render(sample_result()), validator)
    run = doc["runs"][0]
    assert run["originalUriBaseIds"] == {"SRCROOT": {"uri": f"file://{ROOT}/"}}
    sites = {(s.path, s.line): s for s in sample_sites()}
    for res in run["results"]:
        loc = res["locations"][0]
        phys = loc["physicalLocation"]
        assert phys["artifactLocation"]["uriBaseId"] == "SRCROOT"
        path = phys["artifactLocation"]["uri"].replace("%20", " ")
        site = sites[(path, phys["region"]["startLine"])]
        assert phys["region"]["startColumn"] == site.column >= 1  # both 1-based
        assert phys["region"]["snippet"]["text"] == (site.code or "").replace("\udcff", "\\xff")
        if site.function:
            assert loc["logicalLocations"] == [{"name": site.function, "kind": "function"}]


def test_relative_root_has_no_base_uri(validator: Draft4Validator) -> None:
    doc = _log(sarif.render(sample_result(root="linux")), validator)
    assert "originalUriBaseIds" not in doc["runs"][0]


def test_messages_and_properties(validator: Draft4Validator) -> None:
    doc = _log(sarif.render(sample_result()), validator)
    by_line = {(r["locations"][0]["physicalLocation"]["region"]["startLine"]): r
               for r in doc["runs"][0]["results"]}
    er32 = by_line[100]
    text = er32["message"]["text"]
    for part in ("er32()", "readl", "er32 > __er32 > readl", "e1000_intr", "decoded by",
                 "hot path"):
        assert part in text
    props = er32["properties"]
    assert props["group"] == "generic" and props["driver"] == "e1000e"
    assert props["config_symbol"] == "E1000E" and props["reachable"] is True
    assert props["hot"] is True and props["via"] == ["er32", "__er32", "readl"]
    assert props["tdx"]["path"] == "ve" and props["tdx"]["insn"] == "mov"
    assert "MOVS" in by_line[12]["message"]["text"]
    assert "Raw __iomem dereference (`p->field`, write)" in by_line[50]["message"]["text"]
    assert by_line[52]["message"]["text"].startswith("Call of `ioread8` in `vp_get_status`.")
    assert by_line[130]["message"]["text"].startswith("`ioread32` used as a value")


def test_fingerprints_survive_line_shifts(validator: Draft4Validator) -> None:
    base = sample_result()
    shifted = sample_result(sites=tuple(replace(s, line=s.line + 7) for s in base.sites))
    docs = [_log(sarif.render(r), validator) for r in (base, shifted)]
    prints = [[r["partialFingerprints"]["mmioscan/v1"] for r in d["runs"][0]["results"]]
              for d in docs]
    assert prints[0] == prints[1]
    assert len(set(prints[0])) == len(prints[0])
    expected = {s.fingerprint for s in base.sites if finding_class(s) and s.reachable is not False}
    assert set(prints[0]) == expected


def test_truncation_keeps_the_most_severe(validator: Draft4Validator) -> None:
    doc = _log(sarif.render(sample_result(), max_results=3), validator)
    run = doc["runs"][0]
    assert _keys(doc) == EXPECTED[:3]
    props = run["properties"]
    assert props["truncated"] is True
    assert (props["results_total"], props["results_emitted"]) == (len(EXPECTED), 3)
    notes = run["invocations"][0]["toolExecutionNotifications"]
    truncated = [n for n in notes if n["descriptor"]["id"] == "results-truncated"]
    assert len(truncated) == 1 and "6 of 9 results left out" in truncated[0]["message"]["text"]
    assert run["invocations"][0]["executionSuccessful"] is True


def test_default_limit_is_githubs() -> None:
    result = big_result(30_000)
    doc = json.loads(sarif.render(result))
    run = doc["runs"][0]
    assert len(run["results"]) == 25_000
    assert run["properties"]["truncated"] is True
    assert run["properties"]["results_total"] > 25_000
    levels = [r["level"] for r in run["results"]]
    errors = levels.count("error")
    assert errors and set(levels[:errors]) == {"error"}  # all errors kept, first


def test_problems_are_notifications(validator: Draft4Validator) -> None:
    doc = _log(sarif.render(sample_result()), validator)
    notes = doc["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert [n["descriptor"]["id"] for n in notes] == ["file-problem"]
    uri = notes[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "drivers/bad%7Cfile.c"


def test_deterministic_without_timestamps() -> None:
    first, second = sarif.render(sample_result()), sarif.render(sample_result())
    assert first == second
    assert "Utc" not in first and first.isascii()


def test_unenriched_sites(validator: Draft4Validator) -> None:
    """Before driver mapping and verdicts: only derefs are findings, nothing breaks."""
    bare = tuple(Site(s.path, s.line, s.column, s.function, s.callee, s.accessor, s.kind,
                      s.access, s.width, s.family, s.active, s.via) for s in sample_sites())
    doc = _log(sarif.render(sample_result(sites=bare, drivers=(), strategies=(),
                                          kernel_version=None, strategy=None, config=None)),
               validator)
    results = doc["runs"][0]["results"]
    assert [r["ruleId"] for r in results] == ["raw-iomem-deref"]
    assert "partialFingerprints" not in results[0]
    assert results[0]["properties"]["tdx"] is None
    assert "not assessed" in results[0]["message"]["text"]


def test_empty_result(validator: Draft4Validator) -> None:
    doc = _log(sarif.render(sample_result(sites=(), problems=())), validator)
    assert doc["runs"][0]["results"] == []


def test_finding_classes() -> None:
    sites = {(s.path.rsplit("/", 1)[-1], s.line): s for s in sample_sites()}
    hot = sites[("netdev.c", 100)]
    assert finding_class(hot) == "hot-ve-mmio"
    assert finding_class(replace(hot, hot=False)) == "ve-mmio"
    assert finding_class(replace(hot, active=False)) is None
    assert finding_class(replace(hot, tdx=None)) is None  # not assessed
    assert finding_class(sites[("virtio_pci_modern_dev.c", 40)]) is None  # paravirt
    deref = sites[("hpet.c", 50)]
    assert finding_class(deref) == finding_class(replace(deref, tdx=None)) == "raw-iomem-deref"
    assert finding_class(sites[("hpet.c", 44)]) == "port-io"
    assert hot.tdx is not None
    port = replace(hot, tdx=replace(hot.tdx, insn="port-io"))  # ioread8 on a port cookie
    assert finding_class(port) == "port-io"
    assert finding_class(sites[("submit.c", 70)]) == "unsupported-mmio"
