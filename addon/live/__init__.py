"""Live motion: the spectral volume evaluated by Blender's renderers at any frame, with no bake."""
