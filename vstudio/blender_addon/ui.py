"""What the artist sees: preferences, the vstudio panel, the status bar, file handlers."""

import os

import bpy
from bpy.app.handlers import persistent
from bpy.props import StringProperty

from . import core
from .app import ADDON, APP, current_file, redraw

ICONS = {"up to date": "CHECKMARK", "modified": "GREASEPENCIL", "out of date": "FILE_REFRESH",
         "locked by me": "LOCKED", "needs lock": "UNLOCKED", "conflicted": "ERROR"}


class VSTUDIO_Preferences(bpy.types.AddonPreferences):
    bl_idname = ADDON

    server: StringProperty(name="Server", description="vstudio serve URL (empty: the one the "
                           "file's working copy was checked out from)")
    token: StringProperty(name="Token", subtype="PASSWORD",
                          description="API token (empty: the working copy's)")
    command: StringProperty(name="vstudio command", description="How to start vstudio "
                            "(empty: the one that installed this add-on, else PATH)")

    def draw(self, context):
        col = self.layout.column()
        col.prop(self, "server")
        col.prop(self, "token")
        col.prop(self, "command")


def state_line(file: str) -> tuple[str, str]:
    """Text and icon for the open file's state."""
    if not file:
        return "not saved", "FILE"
    if file in APP.revisions:
        orig, rev = APP.revisions[file]
        return f"r{rev} of {os.path.basename(orig)} (read-only)", "HIDE_ON"
    state = APP.state(file)
    if state is None:
        err = APP.errors.get(os.path.abspath(file))
        return (err, "ERROR") if err else ("asking the repository…", "TIME")
    text = core.describe(state)
    icon = "LOCKED" if text.startswith("locked by") else ICONS.get(state["summary"], "INFO")
    return text, icon


class Sidebar:
    """Where the panels live: the vstudio tab of the 3D View's sidebar (N)."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "vstudio"


class VSTUDIO_PT_repository(Sidebar, bpy.types.Panel):
    bl_label = "Repository"
    bl_idname = "VSTUDIO_PT_repository"

    def draw(self, context):
        file = current_file()
        layout = self.layout
        text, icon = state_line(file)
        row = layout.row()
        row.label(text=text, icon=icon)
        row.operator("vstudio.refresh", text="", icon="FILE_REFRESH")
        if file in APP.revisions:
            layout.operator("vstudio.open_current", icon="BACK")
            return
        state = APP.state(file) or {}
        if state:
            layout.label(text=f"{state['file']}  r{state['rev']} (head r{state['head']})")
        if state.get("lock") and state["lock"].get("message"):
            layout.label(text=f"“{state['lock']['message']}”")
        # two rows: three buttons in one are cut short at the sidebar's default width
        row = layout.row(align=True)
        mine = state.get("lock") and state["lock"]["owner"] == state.get("user")
        row.operator("vstudio.unlock" if mine else "vstudio.lock",
                     icon="UNLOCKED" if mine else "LOCKED")
        row.operator("vstudio.update", icon="IMPORT")
        layout.operator("vstudio.commit", icon="EXPORT")
        for path in state.get("missing", [])[:3]:
            layout.label(text=f"missing: {path}", icon="ERROR")
        layout.operator("vstudio.history", icon="TIME")
        for r in APP.history.get(os.path.abspath(file), [])[:8]:
            row = layout.row()
            row.label(text=f"r{r['rev']} {r['author']} {core.when_short(r['time'])}: "
                           f"{r['message'][:40]}")
            row.operator("vstudio.open_revision", text="", icon="FILEBROWSER").rev = r["rev"]


class VSTUDIO_PT_locks(Sidebar, bpy.types.Panel):
    """Every lock in the open file's project: a sub-panel, so it folds away (3.x and 4.x)."""

    bl_label = "Locks"
    bl_idname = "VSTUDIO_PT_locks"
    bl_parent_id = "VSTUDIO_PT_repository"
    bl_options = {"DEFAULT_CLOSED"}  # noqa: RUF012 - Blender reads a set here

    def draw_header(self, context):
        locks = (APP.state(current_file()) or {}).get("locks", [])
        self.layout.label(text=f"({len(locks)})")

    def draw(self, context):
        state = APP.state(current_file()) or {}
        locks = state.get("locks", [])
        if not locks:
            self.layout.label(text="nobody holds a lock")
        for path, who, icon in lock_lines(state):
            col = self.layout.column(align=True)
            col.label(text=path, icon=icon)  # two lines: the sidebar is narrow
            col.label(text=who, icon="BLANK1")


def lock_lines(state):
    """Each lock of the project as (path, ``ben since … “why”``, icon); mine say "me"."""
    out = []
    for lk in state.get("locks", []):
        mine = lk["owner"] == state.get("user")
        why = f" “{lk['message']}”" if lk.get("message") else ""
        out.append((lk["path"], f"{'me' if mine else lk['owner']} since "
                    f"{core.when_short(lk['since'])}{why}", "LOCKED" if mine else "USER"))
    return out


class VSTUDIO_PT_farm(Sidebar, bpy.types.Panel):
    bl_label = "Farm"
    bl_idname = "VSTUDIO_PT_farm"

    def draw(self, context):
        layout = self.layout
        layout.operator("vstudio.submit", icon="RENDER_ANIMATION")
        layout.label(text="Render this shot and what it needs:")
        row = layout.row(align=True)
        row.operator("vstudio.render_project", text="Here", icon="RENDER_STILL").farm = False
        row.operator("vstudio.render_project", text="On the farm", icon="WORLD").farm = True
        for item in APP.renders.get(os.path.abspath(current_file() or "."), [])[:8]:
            layout.label(text=f"{item['status']}: {item['file']}")
        for job_id, j in sorted(APP.jobs.items(), reverse=True)[:5]:
            box = layout.box()
            box.label(text=core.job_line(j) + f"  {j.get('name', '')}")
            row = box.row(align=True)
            row.operator("vstudio.job_page", text="Web page", icon="URL").job_id = job_id
            if j.get("status") == "done":
                row.operator("vstudio.fetch", text="Fetch", icon="IMPORT").job_id = job_id


def draw_status(self, context):
    """In the status bar: the open file's state and running jobs' progress."""
    text, icon = state_line(current_file())
    self.layout.label(text=f"vstudio: {text}", icon=icon)
    for j in APP.jobs.values():
        if j.get("status") not in core.FINAL:
            self.layout.label(text=core.job_line(j), icon="RENDER_ANIMATION")


def _warn_if_held(state):
    msg = core.held_by_other(state)
    if not msg:
        return
    APP.report("WARNING", msg)
    if bpy.app.background:  # no screen to show a pop-up on (it would crash Blender)
        return
    try:  # a pop-up too, when there is a window to show it in
        wm = bpy.context.window_manager
        if wm.windows:
            wm.popup_menu(lambda self, ctx: self.layout.label(text=msg),
                          title="Locked by someone else", icon="LOCKED")
    except (RuntimeError, AttributeError):
        pass


@persistent
def on_load(_dummy):
    """Opening a file: ask for its state; warn at once if someone else holds it."""
    file = current_file()
    if file and file not in APP.revisions:
        APP.refresh(file, then=_warn_if_held)
    redraw()


@persistent
def on_save_pre(_dummy):
    """Saving: warn over a file someone else holds, a read-only revision or a needs-lock."""
    file = current_file()
    if file in APP.revisions:
        orig, rev = APP.revisions[file]
        APP.report("WARNING", f"this is r{rev} of {os.path.basename(orig)}, opened read-only: "
                              "changes here are not in the working copy")
        return
    state = APP.state(file) if file else None
    if not state:
        return
    msg = core.held_by_other(state)
    if msg:
        APP.report("WARNING", "saving over " + msg)
    elif state.get("needs_lock") and not state.get("lock"):
        APP.report("WARNING", f"{state['file']} needs a lock: lock it before you change it")


@persistent
def on_save_post(_dummy):
    file = current_file()
    if file and file not in APP.revisions:
        APP.refresh(file)


CLASSES = (VSTUDIO_Preferences, VSTUDIO_PT_repository, VSTUDIO_PT_locks, VSTUDIO_PT_farm)
HANDLERS = ((bpy.app.handlers.load_post, on_load), (bpy.app.handlers.save_pre, on_save_pre),
            (bpy.app.handlers.save_post, on_save_post))
