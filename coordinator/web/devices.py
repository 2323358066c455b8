"""Devices for on-site staff: a searchable list and a page per device.

Both read what ``coordinator.inventory`` keeps (the search row, the latest GLPI
document, the history of changes), the same functions the REST API uses. Every value
here came from an agent: the templates show it as text (autoescape), never as markup.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import select

from .. import inventory
from ..clock import isoformat
from ..permissions import Permission, allowed
from ..settings import ENGINE, PRESENCE
from ..storage.schema import devices
from .pages import deny, forbidden, not_found
from .render import render
from .sessions import signed_in

routes = web.RouteTableDef()

PAGE_SIZE = 200
HISTORY = 100
BIG = 10**9
NUMBER_FILTERS = (("ram_below", BIG), ("disk_free_below", BIG), ("battery_wear_above", 100))


def _number(raw: str, top: int) -> int | None:
    raw = raw.strip()
    return int(raw) if raw.isdigit() and int(raw) <= top else None


def _query(request: web.Request) -> tuple[inventory.Filters, dict[str, str]]:
    """The filters, and the values to put back in the form (and the CSV link)."""
    values = {"q": request.query.get("q", "").strip()[:200]}
    numbers: dict[str, int | None] = {}
    for name, top in NUMBER_FILTERS:
        numbers[name] = _number(request.query.get(name, ""), top)
        values[name] = "" if numbers[name] is None else str(numbers[name])
    values["finding"] = request.query.get("finding", "").strip()[:64]
    filters = inventory.Filters(
        q=values["q"] or None,
        ram_below=numbers["ram_below"],
        disk_free_below=numbers["disk_free_below"],
        battery_wear_above=numbers["battery_wear_above"],
        finding=values["finding"] or None,
    )
    return filters, values


@routes.get("/devices")
async def device_list(request: web.Request) -> web.Response:
    who = signed_in(request).principal
    if not allowed(who.role, Permission.DEVICE_VIEW):
        return await deny(request, who, forbidden(who, Permission.DEVICE_VIEW))
    filters, values = _query(request)
    found = await inventory.search(
        request.app[ENGINE], filters, request.app[PRESENCE], limit=PAGE_SIZE + 1
    )
    chosen = {k: v for k, v in values.items() if v}
    return render(
        request,
        "devices.html",
        devices=found[:PAGE_SIZE],
        more=len(found) > PAGE_SIZE,
        values=values,
        filtered=filters.any,
        export_url="/api/v1/devices/export.csv" + ("?" + urlencode(chosen) if chosen else ""),
    )


# --- the device page -------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _rows(content: dict[str, Any], section: str) -> list[dict[str, Any]]:
    value = content.get(section)
    return [i for i in value if isinstance(i, dict)] if isinstance(value, list) else []


def _text(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return ", ".join(_text(v) for v in value) if isinstance(value, list) else str(value)
    return str(value)


def _mb(value: Any) -> str:
    """Megabytes as people read them: '512 MB', '15.7 GB', '1.2 TB'."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _text(value)
    if value >= 1024 * 1024:
        return f"{value / 1024 / 1024:.1f} TB"
    if value >= 1024:
        return f"{value / 1024:.1f} GB"
    return f"{value:.0f} MB"


def _hardware(content: dict[str, Any], row: dict[str, Any]) -> list[tuple[str, str]]:
    hardware = _dict(content.get("hardware"))
    bios = _dict(content.get("bios"))
    system = _dict(content.get("operatingsystem"))
    cpus = _rows(content, "cpus")
    memory = hardware.get("memory")
    if not isinstance(memory, (int, float)):
        memory = sum(m.get("capacity") or 0 for m in _rows(content, "memories")) or None
    cpu = ""
    if cpus:
        first = cpus[0]
        cpu = _text(first.get("name"))
        cores, threads = first.get("core"), first.get("thread")
        if cores:
            cpu += f" · {cores} cores" + (f", {threads} threads" if threads else "")
        if len(cpus) > 1:
            cpu += f" (x{len(cpus)})"
    model = " ".join(
        _text(v) for v in (bios.get("smanufacturer"), bios.get("smodel")) if v
    ) or _text(hardware.get("model") or bios.get("mmodel"))
    os_name = _text(system.get("full_name") or system.get("name"))
    if system.get("kernel_version"):
        os_name += f" (kernel {system['kernel_version']})"
    user = hardware.get("userid") or (row.get("user") or "")
    pairs = [
        ("Model", model),
        ("Serial", _text(bios.get("ssn") or bios.get("msn"))),
        ("CPU", cpu),
        ("Memory", _mb(memory) if memory else ""),
        ("Operating system", os_name),
        ("Architecture", _text(system.get("arch"))),
        ("Boot time", _text(system.get("boot_time"))),
        ("User", _text(user)),
        ("Virtual machine", _text(hardware.get("vmsystem"))),
        (
            "BIOS",
            " ".join(_text(bios.get(k)) for k in ("bmanufacturer", "bversion") if bios.get(k)),
        ),
    ]
    return [(k, v) for k, v in pairs if v]


def _disks(content: dict[str, Any]) -> list[dict[str, Any]]:
    disks = []
    for d in _rows(content, "drives"):
        total, free = d.get("total"), d.get("free")
        used_pct = None
        if isinstance(total, (int, float)) and isinstance(free, (int, float)) and total > 0:
            used_pct = max(0, min(100, round(100 * (total - free) / total)))
        disks.append(
            {
                "mount": _text(d.get("type") or d.get("letter")),
                "volume": _text(d.get("volumn") or d.get("label")),
                "filesystem": _text(d.get("filesystem")),
                "total": _mb(total),
                "free": _mb(free),
                "used_pct": used_pct,
                "low": used_pct is not None and used_pct >= 90,
            }
        )
    return disks


def _storages(content: dict[str, Any]) -> list[dict[str, str]]:
    return [
        {
            "name": _text(s.get("name")),
            "model": _text(s.get("model") or s.get("manufacturer")),
            "type": _text(s.get("type") or s.get("interface")),
            "size": _mb(s.get("disksize")),
            "serial": _text(s.get("serial")),
        }
        for s in _rows(content, "storages")
    ]


def _networks(content: dict[str, Any]) -> list[dict[str, str]]:
    return [
        {
            "name": _text(n.get("description")),
            "type": _text(n.get("type")),
            "status": _text(n.get("status")),
            "mac": _text(n.get("macaddr") or n.get("mac")),
            "ip": _text(n.get("ipaddress") or n.get("ipaddress6")),
            "gateway": _text(n.get("ipgateway")),
        }
        for n in _rows(content, "networks")
    ]


def _batteries(content: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for b in _rows(content, "batteries"):
        design, real = b.get("capacity"), b.get("real_capacity")
        wear = None
        if isinstance(design, int) and isinstance(real, int) and design > 0 and real >= 0:
            wear = max(0, round(100 * (design - real) / design))
        found.append(
            {
                "name": _text(b.get("name")),
                "manufacturer": _text(b.get("manufacturer")),
                "chemistry": _text(b.get("chemistry")),
                "capacity": f"{design} mWh" if design else "",
                "real_capacity": f"{real} mWh" if real else "",
                "wear": wear,
            }
        )
    return found


def _softwares(content: dict[str, Any]) -> list[dict[str, str]]:
    found = [
        {
            "name": _text(s.get("name")),
            "version": _text(s.get("version")),
            "publisher": _text(s.get("publisher")),
            "from": _text(s.get("from")),
        }
        for s in _rows(content, "softwares")
    ]
    return sorted(found, key=lambda s: s["name"].lower())


def _finding(severity: str, title: str, details: list[str] | None = None) -> dict[str, Any]:
    return {"severity": severity, "title": title, "details": details or []}


def _findings(content: dict[str, Any]) -> list[dict[str, Any]]:
    """What ``backdesk_health`` (and ``findings``, if any) says, worst first."""
    found = []
    for f in content.get("findings") or [] if isinstance(content.get("findings"), list) else []:
        if isinstance(f, dict):
            severity = _text(f.get("severity")) or "info"
            found.append(_finding(severity, _text(f.get("title") or f.get("id")) or "finding"))
        elif isinstance(f, str):
            found.append(_finding("info", f))
    health = _dict(content.get("backdesk_health"))
    smart = [s for s in health.get("smart") or [] if isinstance(s, dict)]
    for disk in smart:
        if disk.get("passed") is False:
            found.append(_finding("critical", f"Disk {_text(disk.get('device'))} fails SMART"))
    if smart and all(d.get("passed") for d in smart):
        found.append(_finding("info", f"SMART health passed on {len(smart)} disk(s)"))
    pending = health.get("pending_updates")
    if isinstance(pending, int) and not isinstance(pending, bool):
        found.append(
            _finding(
                "warning" if pending >= 50 else "info",
                f"{pending} pending update{'' if pending == 1 else 's'}",
            )
        )
    if health.get("reboot_required"):
        found.append(_finding("warning", "Reboot required"))
    failed = [_text(u) for u in health.get("failed_services") or [] if u]
    if failed:
        found.append(_finding("error", f"{len(failed)} failed service(s)", failed[:20]))
    errors = [_text(e) for e in health.get("recent_errors") or [] if e]
    if errors:
        found.append(_finding("warning", f"{len(errors)} recent error(s) in the log", errors[-10:]))
    for b in health.get("battery_wear") or []:
        if isinstance(b, dict) and isinstance(b.get("wear_percent"), (int, float)):
            wear = b["wear_percent"]
            found.append(
                _finding(
                    "warning" if wear >= 40 else "info",
                    f"Battery {_text(b.get('name'))} worn {wear:g}%",
                )
            )
    known = {"smart", "pending_updates", "reboot_required", "failed_services"}
    known |= {"recent_errors", "battery_wear"}
    for key, value in health.items():
        if key in known or value in (None, [], {}, ""):
            continue
        if isinstance(value, dict):
            details = [f"{k}: {_text(v)}" for k, v in value.items()][:20]
        elif isinstance(value, list):
            details = [_text(v) for v in value][:20]
        else:
            details = [_text(value)]
        found.append(_finding("info", key.replace("_", " ").capitalize(), details))
    order = {"critical": 0, "error": 1, "warning": 2, "info": 3}
    return sorted(found, key=lambda f: order.get(f["severity"], 4))


def _change(change: dict[str, Any]) -> dict[str, Any]:
    summary = _dict(change.get("summary"))
    before = after = ""
    fields = _dict(summary.get("fields"))
    if fields:
        pairs = [(k, v) for k, v in fields.items() if isinstance(v, list) and len(v) == 2]
        before = "; ".join(f"{k}: {_text(v[0])}" for k, v in pairs)
        after = "; ".join(f"{k}: {_text(v[1])}" for k, v in pairs)
    else:
        before, after = _brief(summary.get("before")), _brief(summary.get("after"))
    return {
        "at": change.get("at"),
        "section": _text(change.get("section")),
        "kind": _text(change.get("kind")),
        "item": _text(summary.get("item")),
        "before": before[:300],
        "after": after[:300],
    }


def _brief(value: Any) -> str:
    if isinstance(value, dict):
        keys = ("name", "version", "model", "capacity", "disksize", "total", "ipaddress")
        shown = [f"{k}: {_text(value[k])}" for k in keys if value.get(k) not in (None, "")]
        return "; ".join(shown) or _text(value)
    return _text(value)


async def _device(request: web.Request, device_id: str) -> dict[str, Any] | None:
    async with request.app[ENGINE].connect() as conn:
        row = (await conn.execute(select(devices).where(devices.c.id == device_id))).first()
    if row is None:
        return None
    return {
        "id": row.id,
        "hostname": row.hostname,
        "online": request.app[PRESENCE].is_online(row.id),
        "last_seen": isoformat(row.last_seen_at),
        "enrolled_at": isoformat(row.enrolled_at),
        "agent_version": row.agent_version,
    }


@routes.get("/devices/{device_id}")
async def device_page(request: web.Request) -> web.Response:
    who = signed_in(request).principal
    if not allowed(who.role, Permission.DEVICE_VIEW):
        return await deny(request, who, forbidden(who, Permission.DEVICE_VIEW))
    device_id = request.match_info["device_id"][:64]
    device = await _device(request, device_id)
    if device is None:
        return not_found(request, "There is no such device.")
    engine = request.app[ENGINE]
    latest = await inventory.latest(engine, device_id)
    context: dict[str, Any] = {"device": device, "has_inventory": latest is not None}
    if latest is not None:
        document, received_at = latest
        content = _dict(_dict(document).get("content"))
        softwares = _softwares(content)
        context.update(
            received_at=isoformat(received_at),
            hardware=_hardware(content, {}),
            disks=_disks(content),
            storages=_storages(content),
            networks=_networks(content),
            batteries=_batteries(content),
            softwares=softwares,
            findings=_findings(content),
            changes=[_change(c) for c in await inventory.history(engine, device_id, HISTORY)],
        )
    return render(request, "device.html", **context)
