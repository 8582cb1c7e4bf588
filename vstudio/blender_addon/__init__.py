"""vstudio inside Blender: repository state, lock, commit, update, history; farm renders.

Installed by ``vstudio blender install`` (or from the zip ``vstudio blender zip`` writes).
``bpy`` is imported only in ``register``, so ``core`` and ``tasks`` import anywhere.
"""

bl_info = {
    "name": "vstudio",
    "author": "vstudio",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "3D View > Sidebar > vstudio; status bar",
    "description": "Lock, commit, update and render on the farm without leaving Blender",
    "category": "System",
}


def register() -> None:
    import bpy

    from . import operators, ui

    for cls in (*operators.CLASSES, *ui.CLASSES):
        bpy.utils.register_class(cls)
    bpy.types.STATUSBAR_HT_header.append(ui.draw_status)
    for handlers, fn in ui.HANDLERS:
        if fn not in handlers:
            handlers.append(fn)


def unregister() -> None:
    import bpy

    from . import operators, ui

    for handlers, fn in ui.HANDLERS:
        if fn in handlers:
            handlers.remove(fn)
    bpy.types.STATUSBAR_HT_header.remove(ui.draw_status)
    for cls in reversed((*operators.CLASSES, *ui.CLASSES)):
        bpy.utils.unregister_class(cls)
