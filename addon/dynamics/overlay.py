"""The Image Editor overlay: the drag being made, and the scene's pokes as arrows (active ones
bright). Drawn with ``gpu`` in ``POST_PIXEL``, never in background mode (no GPU drawing there);
the arrows' geometry is ``utils.pokes``'s."""

from __future__ import annotations

from typing import Any

import bpy

from ..utils.pokes import arrow_lines, is_active, overlay_arrow

draw_handles: list[Any] = []  # the SpaceImageEditor draw handler, while registered
drag: dict[str, Any] = {}  # the drag in progress: region pointer, start and end in region pixels


def draw_lines(lines: list[tuple[float, float]], color: tuple[float, float, float, float], width: float) -> None:
    import gpu
    from gpu_extras.batch import batch_for_shader

    try:  # wide lines on every GPU backend (OpenGL, Metal, Vulkan)
        shader = gpu.shader.from_builtin("POLYLINE_UNIFORM_COLOR")
        shader.uniform_float("viewportSize", gpu.state.viewport_get()[2:])
        shader.uniform_float("lineWidth", width)
    except (ValueError, AttributeError):
        shader = gpu.shader.from_builtin("UNIFORM_COLOR")
        gpu.state.line_width_set(width)
    batch = batch_for_shader(shader, "LINES", {"pos": lines})
    gpu.state.blend_set("ALPHA")
    shader.uniform_float("color", color)
    batch.draw(shader)
    gpu.state.line_width_set(1.0)
    gpu.state.blend_set("NONE")


def draw_overlay() -> None:
    """Image Editor overlay: the drag being made, and the scene's pokes (active ones bright)."""
    if bpy.app.background:
        return
    try:
        context = bpy.context
        region, space, scene = context.region, context.space_data, context.scene
        if region is None or space is None or scene is None:
            return
        if drag.get("region") == region.as_pointer() and drag.get("start") is not None:
            (x0, y0), (x1, y1) = drag["start"], drag["end"]
            draw_lines(arrow_lines(x0, y0, x1, y1), (1.0, 0.55, 0.1, 1.0), 3.0)
        settings = getattr(scene, "gid_interactive", None)
        if settings is None or not settings.show_overlay or space.image is None:
            return
        if space.image not in (settings.source_image, settings.preview_image):
            return
        now = scene.frame_current_final
        bright, dim = [], []
        view = region.view2d

        def to_region(u: float, v: float) -> tuple[float, float]:
            return view.view_to_region(u, v, clip=False)

        for item in scene.gid_pokes:
            if not item.enabled:
                continue
            lines = overlay_arrow(tuple(item.position), tuple(item.direction), item.strength, to_region)
            if lines is not None:
                (bright if is_active(item.frame, item.duration, now) else dim).extend(lines)
        if dim:
            draw_lines(dim, (1.0, 1.0, 1.0, 0.35), 1.5)
        if bright:
            draw_lines(bright, (0.2, 0.9, 1.0, 1.0), 2.5)
    except Exception:
        pass


def add_draw_handler() -> None:
    if not draw_handles:
        draw_handles.append(bpy.types.SpaceImageEditor.draw_handler_add(draw_overlay, (), "WINDOW", "POST_PIXEL"))


def remove_draw_handlers() -> None:
    while draw_handles:
        bpy.types.SpaceImageEditor.draw_handler_remove(draw_handles.pop(), "WINDOW")
    drag.clear()
