"""Accounts, for administrators: list, create (showing the TOTP URI once), role, disable.

Every change goes through ``accounts`` and so lands in the audit log. An administrator
cannot demote or disable their own account here, so the desk cannot lock itself out by
a slip of the mouse (another administrator, or the CLI, can).
"""

from __future__ import annotations

from aiohttp import web

from ..accounts import add_user, list_users, update_user
from ..errors import ConfigError, Conflict, NotFound
from ..permissions import Permission, allowed
from ..settings import ENGINE
from ..storage.schema import ROLES
from .pages import deny, forbidden
from .render import redirect, render
from .sessions import signed_in

routes = web.RouteTableDef()


async def _admin(request: web.Request) -> web.Response | None:
    who = signed_in(request).principal
    if not allowed(who.role, Permission.USER_MANAGE):
        return await deny(request, who, forbidden(who, Permission.USER_MANAGE))
    return None


async def _users_page(
    request: web.Request,
    status: int = 200,
    error: str | None = None,
    values: dict[str, str] | None = None,
) -> web.Response:
    return render(
        request,
        "users.html",
        status=status,
        users=await list_users(request.app[ENGINE]),
        roles=ROLES,
        error=error,
        values=values or {"name": "", "role": "l1", "full_name": ""},
    )


@routes.get("/users")
async def users_page(request: web.Request) -> web.Response:
    return await _admin(request) or await _users_page(request)


@routes.post("/users")
async def create_user(request: web.Request) -> web.Response:
    if refused := await _admin(request):
        return refused
    who = signed_in(request).principal
    form = await request.post()

    def get(name: str, limit: int) -> str:
        value = form.get(name)
        return value[:limit] if isinstance(value, str) else ""

    values = {
        "name": get("name", 64).strip(),
        "role": get("role", 16),
        "full_name": get("full_name", 200).strip(),
    }
    password = get("password", 200)
    try:
        new = await add_user(
            request.app[ENGINE],
            values["name"],
            values["role"],
            password,
            actor=who.name,
            full_name=values["full_name"] or None,
        )
    except ConfigError as exc:
        return await _users_page(request, 400, str(exc), values)
    except Conflict as exc:
        return await _users_page(request, 409, str(exc), values)
    # The TOTP secret is shown once, on this response only (no redirect, not cached).
    return render(request, "user_created.html", new=new)


@routes.post("/users/{name}")
async def change_user(request: web.Request) -> web.Response:
    if refused := await _admin(request):
        return refused
    who = signed_in(request).principal
    name = request.match_info["name"][:64]
    form = await request.post()
    role = form.get("role")
    disabled = form.get("disabled")
    if name == who.name:
        return redirect("/users", "error", "You cannot change your own account here.")
    try:
        if isinstance(role, str) and role:
            await update_user(request.app[ENGINE], who.name, name, role=role)
            message = f"{name} is now {role}."
        elif disabled in ("0", "1"):
            await update_user(request.app[ENGINE], who.name, name, disabled=disabled == "1")
            message = f"{name} is {'disabled' if disabled == '1' else 'enabled again'}."
        else:
            return redirect("/users", "error", "Nothing to change.")
    except (ConfigError, NotFound) as exc:
        return redirect("/users", "error", str(exc))
    return redirect("/users", "ok", message)
