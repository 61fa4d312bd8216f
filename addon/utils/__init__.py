"""The add-on's logic that needs no Blender: names and paths of outputs, the add-on's errors, the
worker thread, the engines it talks to, and the interactive dynamics' F-curve evaluation and
caches. Nothing under ``utils`` imports ``bpy`` (``tests/test_addon_utils.py`` runs it without
Blender): the bpy-side modules turn Blender data into the plain values these functions take.
"""
