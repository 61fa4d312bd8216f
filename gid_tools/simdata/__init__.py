"""Blender as the data engine: procedural scenes with physical, exactly known motion, rendered to
training data for the motion prior (stills with their spectral volumes) and the neural renderer
(frame pairs with exact motion and true disocclusions).

``motion`` (modal wind-driven oscillators), ``scenes`` (geometry, materials, lights, cameras) and
``truth`` (trajectories and volumes) are bpy-free numpy; ``blender`` builds and renders them with
``bpy``; ``make`` runs scenes in parallel into ``shards``; ``verify`` checks the ground truth
against the engine's own extraction; ``contact`` draws a contact sheet; ``command`` is
``gid make-data``. None of it ships in the extension.
"""
