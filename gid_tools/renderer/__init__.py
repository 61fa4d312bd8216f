"""The neural image-based renderer (paper §5, Fig. 4): its torch model, data, training, evaluation
and ONNX export.

A feature pyramid of the still ``I0`` is softmax-splatted level by level with the motion ``F_t``
(weights ``W = mean_t ||F_t||``), and a synthesis network decodes the warped pyramid into the
frame, filling disocclusions. Layout, as in diffusers: one model per file (``feature_encoder``,
``synthesis``), the composition in ``neural_renderer``; data, training, evaluation and export
apart. The runtime runs the exported graphs (``gid_engine/rendering/neural.py``).
"""
