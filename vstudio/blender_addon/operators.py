"""``bpy.ops.vstudio.*``: thin operators; the work is in ``core``, run by ``app.APP``."""

import os

import bpy
from bpy.props import BoolProperty, CollectionProperty, EnumProperty, IntProperty, StringProperty

from . import core
from .app import APP, current_file, redraw


def _saved_file(op: bpy.types.Operator) -> str:
    file = current_file()
    if not file:
        op.report({"ERROR"}, "error: save the file first (it is not in a working copy yet)")
    return file


class VSTUDIO_OT_report(bpy.types.Operator):
    """Show a vstudio message as a Blender report"""

    bl_idname = "vstudio.report"
    bl_label = "vstudio message"
    bl_options = {"INTERNAL"}  # noqa: RUF012 - Blender reads a set here

    level: StringProperty(default="INFO")
    message: StringProperty()

    def execute(self, context):
        self.report({self.level}, self.message)
        return {"FINISHED"}


class VSTUDIO_OT_refresh(bpy.types.Operator):
    """Ask the repository for the open file's state"""

    bl_idname = "vstudio.refresh"
    bl_label = "Refresh"

    def execute(self, context):
        file = _saved_file(self)
        if file:
            APP.refresh(file)
        return {"FINISHED"}


class VSTUDIO_OT_lock(bpy.types.Operator):
    """Lock the open file so only you can commit it"""

    bl_idname = "vstudio.lock"
    bl_label = "Lock"

    message: StringProperty(name="Why", description="Others see this beside your lock")

    def invoke(self, context, event):
        return context.window_manager.invoke_props_dialog(self)

    def execute(self, context):
        file = _saved_file(self)
        if not file:
            return {"CANCELLED"}
        s, msg = APP.settings(), self.message

        def done(line):
            APP.report("INFO", line)
            APP.refresh(file)

        APP.call("lock", lambda: core.lock(s, file, msg), done)
        return {"FINISHED"}


class VSTUDIO_OT_unlock(bpy.types.Operator):
    """Release your lock on the open file"""

    bl_idname = "vstudio.unlock"
    bl_label = "Unlock"

    force: BoolProperty(name="Break someone else's lock", default=False)

    def execute(self, context):
        file = _saved_file(self)
        if not file:
            return {"CANCELLED"}
        s, force = APP.settings(), self.force

        def done(line):
            APP.report("INFO", line)
            APP.refresh(file)

        APP.call("unlock", lambda: core.unlock(s, file, force), done)
        return {"FINISHED"}


class VSTUDIO_UseItem(bpy.types.PropertyGroup):
    path: StringProperty()
    status: StringProperty()
    include: BoolProperty(default=True)


class VSTUDIO_OT_commit(bpy.types.Operator):
    """Commit the open file (and the changed files it uses) as a new revision"""

    bl_idname = "vstudio.commit"
    bl_label = "Commit"

    message: StringProperty(name="Message", description="What changed and why")
    uses: CollectionProperty(type=VSTUDIO_UseItem)
    save: BoolProperty(name="Save first", default=True,
                       description="Save unsaved changes before committing")

    def invoke(self, context, event):
        self._fill()
        return context.window_manager.invoke_props_dialog(self, width=420)

    def _fill(self):
        self.uses.clear()
        state = APP.state(current_file()) or {}
        for u in state.get("changed_uses", []):
            item = self.uses.add()
            item.name = item.path = u["path"]
            item.status = u["status"]

    def draw(self, context):
        col = self.layout.column()
        col.prop(self, "message")
        if self.uses:
            col.label(text="Also commit the files it uses that changed:")
            for item in self.uses:
                col.prop(item, "include", text=f"{item.path} ({item.status})")
        col.prop(self, "save")

    def execute(self, context):
        file = _saved_file(self)
        if not file:
            return {"CANCELLED"}
        if not self.message.strip():
            self.report({"ERROR"}, "error: write a commit message")
            return {"CANCELLED"}
        if self.save and bpy.data.is_dirty:
            bpy.ops.wm.save_mainfile()
        s, msg = APP.settings(), self.message
        also = [u.path for u in self.uses if u.include]

        def done(res):
            APP.report("INFO", f"committed r{res['rev']} ({len(res['changed'])} paths)"
                       if res.get("rev") else "nothing to commit")
            APP.refresh(file)

        APP.call("commit", lambda: core.commit(s, file, msg, also), done)
        return {"FINISHED"}


class VSTUDIO_OT_update(bpy.types.Operator):
    """Update the working copy holding the open file to the newest revision"""

    bl_idname = "vstudio.update"
    bl_label = "Update"

    def execute(self, context):
        file = _saved_file(self)
        if not file:
            return {"CANCELLED"}
        s = APP.settings()
        rel = (APP.state(file) or {}).get("file")
        root = (APP.state(file) or {}).get("root")

        def done(res):
            conflicts = (len(res.get("conflicts") or {}) + len(res.get("kept") or [])
                         + len(res.get("tree_conflicts") or {}))
            # files are counted; the folders update lists as svn does ("lib/") are not
            added = [p for p in res["added"] if not p.endswith("/")]
            APP.report("WARNING" if conflicts else "INFO",
                       f"at revision {res['rev']}: {len(res['updated'])} updated, "
                       f"{len(added)} added, {len(res['removed'])} removed"
                       + (f", {conflicts} conflicts (yours kept)" if conflicts else ""))
            if rel and rel in res["updated"]:
                if bpy.data.is_dirty:
                    APP.report("WARNING", "the open file changed on disk: File > Revert "
                                          "loads it (your unsaved changes would be lost)")
                    return APP.refresh(file)
                bpy.ops.wm.revert_mainfile()  # reads its images and libraries afresh too
            elif root:
                n = reload_changed(root, set(res["updated"]))
                if n:
                    APP.report("INFO", f"reloaded {n} updated image(s) and libraries")
            APP.refresh(file)

        APP.call("update", lambda: core.update(s, file), done)
        return {"FINISHED"}


def reload_changed(root: str, changed: set[str]) -> int:
    """Reload the images and linked libraries of the open file that an update changed
    (``changed``: working-copy paths), so Blender shows what is now on disk."""
    def rel(path: str, library=None) -> str:
        full = os.path.realpath(bpy.path.abspath(path, library=library))
        return os.path.relpath(full, os.path.realpath(root)).replace(os.sep, "/")

    n = 0
    for img in bpy.data.images:
        if (img.source in ("FILE", "SEQUENCE", "MOVIE") and img.filepath
                and not img.packed_file and rel(img.filepath, img.library) in changed):
            img.reload()
            n += 1
    for lib in bpy.data.libraries:
        if rel(lib.filepath, lib.parent) in changed:
            lib.reload()
            n += 1
    return n


class VSTUDIO_OT_history(bpy.types.Operator):
    """List the revisions of the open file"""

    bl_idname = "vstudio.history"
    bl_label = "History"

    def execute(self, context):
        file = _saved_file(self)
        if not file:
            return {"CANCELLED"}
        s = APP.settings()

        def done(rows):
            APP.history[os.path.abspath(file)] = rows
            APP.report("INFO", f"{len(rows)} revisions of {os.path.basename(file)}")

        APP.call("history", lambda: core.history(s, file), done)
        return {"FINISHED"}


class VSTUDIO_OT_open_revision(bpy.types.Operator):
    """Open an earlier revision of the file, read-only"""

    bl_idname = "vstudio.open_revision"
    bl_label = "Open revision"

    rev: IntProperty(name="Revision", min=1)

    def execute(self, context):
        file = _saved_file(self)
        if not file:
            return {"CANCELLED"}
        if bpy.data.is_dirty:
            self.report({"ERROR"}, "error: save or revert your changes first")
            return {"CANCELLED"}
        s, rev = APP.settings(), self.rev
        orig = APP.revisions.get(file, (file, 0))[0]

        def done(copy):
            APP.revisions[str(copy)] = (orig, rev)
            bpy.ops.wm.open_mainfile(filepath=str(copy))
            APP.report("INFO", f"opened r{rev} of {os.path.basename(orig)} read-only")

        APP.call("revision", lambda: core.revision_copy(s, orig, rev), done)
        return {"FINISHED"}


class VSTUDIO_OT_open_current(bpy.types.Operator):
    """Go back from a read-only revision to the working copy's file"""

    bl_idname = "vstudio.open_current"
    bl_label = "Back to the working file"

    def execute(self, context):
        orig = APP.revisions.get(current_file())
        if not orig:
            return {"CANCELLED"}
        bpy.ops.wm.open_mainfile(filepath=orig[0])
        return {"FINISHED"}


_SOURCES = [("SAVED", "Saved file", "Upload the saved file and the files it uses"),
            ("COMMITTED", "Committed revision",
             "Render the working copy's revision (PROJECT@REV:path): nothing is uploaded")]


class VSTUDIO_OT_submit(bpy.types.Operator):
    """Render the open file on the farm"""

    bl_idname = "vstudio.submit"
    bl_label = "Render on the farm"

    frames: StringProperty(name="Frames", description="1-250, 1-250x2 or 1,5,10-20")
    chunk: IntProperty(name="Chunk", min=0, default=0, description="Frames per task (0: auto)")
    priority: IntProperty(name="Priority", min=0, max=100, default=50)
    profile: StringProperty(name="Profile", description="A vstudio.toml profile (optional)")
    encode: StringProperty(name="Encode", description="Also encode a video, e.g. shot.mp4")
    source: EnumProperty(name="Render", items=_SOURCES, default="SAVED")

    def invoke(self, context, event):
        if not self.frames:
            sc = context.scene
            self.frames = f"{sc.frame_start}-{sc.frame_end}"
        return context.window_manager.invoke_props_dialog(self)

    def execute(self, context):
        file = _saved_file(self)
        if not file:
            return {"CANCELLED"}
        if self.source == "SAVED" and bpy.data.is_dirty:
            bpy.ops.wm.save_mainfile()
        s = APP.settings()
        frames = self.frames or f"{context.scene.frame_start}-{context.scene.frame_end}"
        kw = {"chunk": self.chunk, "priority": self.priority, "profile": self.profile,
              "encode": self.encode, "committed": self.source == "COMMITTED"}

        def done(res):
            APP.report("INFO", f"submitted job {res['id']} ({res['inputs']} files)")
            APP.jobs[res["id"]] = {"id": res["id"], "status": "queued", "progress": 0,
                                   "name": os.path.basename(file), "file": file}
            APP.watch(res["id"], file)

        APP.call("submit", lambda: core.submit(s, file, frames, **kw), done)
        return {"FINISHED"}


class VSTUDIO_OT_job_page(bpy.types.Operator):
    """Open the job's page on the farm in the web browser"""

    bl_idname = "vstudio.job_page"
    bl_label = "Open job page"

    job_id: IntProperty(name="Job", min=1)

    def execute(self, context):
        url = core.job_url(APP.settings(), current_file() or None, self.job_id)
        bpy.ops.wm.url_open(url=url)
        return {"FINISHED"}


class VSTUDIO_OT_fetch(bpy.types.Operator):
    """Download the job's frames and video into render/ beside the file"""

    bl_idname = "vstudio.fetch"
    bl_label = "Fetch results"

    job_id: IntProperty(name="Job", min=1)

    def execute(self, context):
        file = APP.jobs.get(self.job_id, {}).get("file") or _saved_file(self)
        if not file:
            return {"CANCELLED"}
        s, job_id = APP.settings(), self.job_id

        def done(rows):
            where = os.path.dirname(rows[0]["path"]) if rows else "render/"
            APP.report("INFO", f"fetched {len(rows)} file(s) of job {job_id} into {where}")
            APP.jobs.setdefault(job_id, {"id": job_id})["fetched"] = [r["path"] for r in rows]

        APP.call(f"fetch:{job_id}", lambda: core.fetch(s, file, job_id), done)
        return {"FINISHED"}


class VSTUDIO_OT_render_project(bpy.types.Operator):
    """Render this shot and what it needs (vstudio render): only what changed renders"""

    bl_idname = "vstudio.render_project"
    bl_label = "Render this shot and what it needs"

    farm: BoolProperty(name="On the farm", default=False)
    profile: StringProperty(name="Profile")

    def execute(self, context):
        file = _saved_file(self)
        if not file:
            return {"CANCELLED"}
        if bpy.data.is_dirty:
            bpy.ops.wm.save_mainfile()
        s, farm, profile = APP.settings(), self.farm, self.profile

        def done(items):
            APP.renders[os.path.abspath(file)] = items
            APP.report("INFO", core.render_summary(items))

        APP.call("render", lambda: core.render(s, file, farm, profile), done)
        APP.report("INFO", "rendering " + os.path.basename(file)
                   + (" on the farm" if farm else " on this computer"))
        redraw()
        return {"FINISHED"}


CLASSES = (VSTUDIO_OT_report, VSTUDIO_OT_refresh, VSTUDIO_OT_lock, VSTUDIO_OT_unlock,
           VSTUDIO_UseItem, VSTUDIO_OT_commit, VSTUDIO_OT_update, VSTUDIO_OT_history,
           VSTUDIO_OT_open_revision, VSTUDIO_OT_open_current, VSTUDIO_OT_submit,
           VSTUDIO_OT_job_page, VSTUDIO_OT_fetch, VSTUDIO_OT_render_project)
