"""Field-service tools: look up equipment manuals, log meter readings, list them. Offline.

The manuals are a small built-in table (pump P-100, boiler B-20, compressor C-7). Readings go to
an in-memory list, or to a JSON-lines file when ``QWEN_EDGE_FIELD_LOG`` names one (read at each
call), so a demo can keep them across runs.

Run ``python examples/field_tools.py`` to see one call of each tool.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

try:
    from qwen_edge.agents.tools import tool
except ImportError:  # an older qwen_edge without @tool: plain functions work the same

    def tool(fn: Callable[..., Any]) -> Any:  # type: ignore[no-redef]
        return fn


__all__ = ["LOG_ENV", "MANUALS", "TOOLS", "list_readings", "log_reading", "lookup_manual"]

LOG_ENV = "QWEN_EDGE_FIELD_LOG"

MANUALS: dict[str, dict[str, str]] = {
    "P-100": {
        "name": "centrifugal pump P-100",
        "maintenance": "Every 500 operating hours: check the mechanical seal for leaks, grease "
        "the motor bearings (2 g lithium grease each), verify the discharge pressure is "
        "2.0-6.0 bar. Every 4000 h: replace the seal kit SK-100.",
        "error codes": "E01 dry run (suction pressure below 0.3 bar): open the suction valve and "
        "prime the pump. E02 motor overtemperature (> 90 °C): check the fan and the load. "
        "E03 vibration above 7 mm/s: check alignment and impeller wear.",
        "safety": "Lock out and tag out the motor supply before opening the casing. Relieve "
        "pressure through the drain valve first. The casing can exceed 60 °C.",
    },
    "B-20": {
        "name": "gas condensing boiler B-20",
        "maintenance": "Yearly: clean the heat exchanger and the condensate trap, check the "
        "flue gas (CO below 100 ppm), verify system pressure 1.0-2.0 bar, flow temperature "
        "60-80 °C. Replace the ignition electrode every 2 years.",
        "error codes": "F1 ignition failure: check the gas supply and the electrode gap "
        "(3-4 mm). F2 low water pressure (< 0.8 bar): refill to 1.5 bar and look for leaks. "
        "F3 flue blocked: inspect the flue and the condensate trap.",
        "safety": "If you smell gas: do not operate switches, close the gas valve, ventilate "
        "and leave. Isolate gas and power before opening the combustion chamber.",
    },
    "C-7": {
        "name": "screw air compressor C-7",
        "maintenance": "Every 1000 h: change the air filter, check the oil level, drain the "
        "condensate. Every 2000 h: change the oil (4 L) and the oil filter. Working pressure "
        "6-10 bar, oil temperature below 100 °C.",
        "error codes": "A10 high discharge temperature (> 110 °C): clean the cooler, check the "
        "oil level. A20 overpressure (> 11 bar): check the pressure switch and the relief "
        "valve. A30 motor overload: check the supply voltage and the belt tension.",
        "safety": "Depressurize the receiver and wait for the blow-down before any work. Wear "
        "hearing protection: above 85 dB(A) when running. Never adjust the relief valve.",
    },
}
_TOPICS = {"maintenance": "maintenance", "service": "maintenance", "servicing": "maintenance",
           "error codes": "error codes", "error code": "error codes", "errors": "error codes",
           "error": "error codes", "fault codes": "error codes", "faults": "error codes",
           "alarms": "error codes", "safety": "safety", "hazards": "safety",
           "precautions": "safety"}
# (device, metric, unit) -> normal range, from the manuals above
_NORMAL = {("P-100", "discharge pressure", "bar"): (2.0, 6.0),
           ("B-20", "system pressure", "bar"): (1.0, 2.0),
           ("B-20", "flow temperature", "°c"): (60.0, 80.0),
           ("C-7", "working pressure", "bar"): (6.0, 10.0),
           ("C-7", "oil temperature", "°c"): (0.0, 100.0)}


def _device(device: object) -> str:
    """Canonical device id: "p100", "P 100" and "p-100" all mean "P-100"."""
    key = re.sub(r"[^0-9a-z]", "", device.casefold()) if isinstance(device, str) else ""
    for name in MANUALS:
        if key and key == re.sub(r"[^0-9a-z]", "", name.casefold()):
            return name
    msg = f"unknown device {device!r}; known devices: {', '.join(MANUALS)}"
    raise ValueError(msg)


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        msg = f"{name} must be a string (got {value!r})"
        raise TypeError(msg)
    if not value.strip():
        msg = f"{name} must not be empty"
        raise ValueError(msg)
    return " ".join(value.split())


@tool
def lookup_manual(device: str, topic: str) -> dict[str, Any]:
    """Look up a section of a device's service manual.

    Args:
        device: Device id: "P-100" (pump), "B-20" (boiler) or "C-7" (compressor).
        topic: "maintenance", "error codes" or "safety".
    """
    name = _device(device)
    section = _TOPICS.get(_text(topic, "topic").casefold())
    if section is None:
        msg = f"unknown topic {topic!r}; topics: maintenance, error codes, safety"
        raise ValueError(msg)
    manual = MANUALS[name]
    return {"device": name, "model": manual["name"], "topic": section, "text": manual[section]}


_MEMORY: list[dict[str, Any]] = []  # the simulated device log when no file is configured


def _load() -> list[dict[str, Any]]:
    path = os.environ.get(LOG_ENV)
    if not path:
        return _MEMORY
    file = Path(path)
    if not file.exists():
        return []
    with file.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@tool
def log_reading(device: str, metric: str, value: float, unit: str) -> dict[str, Any]:
    """Record a meter reading taken on a device.

    Args:
        device: Device id, e.g. "P-100".
        metric: What was measured, e.g. "discharge pressure".
        value: The reading.
        unit: Unit of the reading, e.g. "bar" or "°C".
    """
    name, metric, unit = _device(device), _text(metric, "metric"), _text(unit, "unit")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        msg = f"value must be a number (got {value!r})"
        raise TypeError(msg)
    if not math.isfinite(value):
        msg = f"value must be a finite number (got {value!r})"
        raise ValueError(msg)
    limits = _NORMAL.get((name, metric.casefold(), unit.casefold()))
    status = ("unchecked" if limits is None else "low" if value < limits[0]
              else "high" if value > limits[1] else "ok")
    entries = _load()
    entry = {"id": len(entries) + 1, "device": name, "metric": metric, "value": float(value),
             "unit": unit, "status": status,
             "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    path = os.environ.get(LOG_ENV)
    if path:
        with Path(path).open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")
    else:
        _MEMORY.append(entry)
    return entry


@tool
def list_readings(device: str) -> dict[str, Any]:
    """List the readings recorded for a device, oldest first.

    Args:
        device: Device id, e.g. "P-100".
    """
    name = _device(device)
    readings = [e for e in _load() if e["device"] == name]
    return {"device": name, "count": len(readings), "readings": readings}


TOOLS = [lookup_manual, log_reading, list_readings]

if __name__ == "__main__":
    print(lookup_manual("P-100", "error codes"))
    print(log_reading("P-100", "discharge pressure", 6.8, "bar"))
    print(list_readings("p100"))
