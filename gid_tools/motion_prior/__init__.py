"""The learned motion prior (paper §4): its torch models, the reference sampling pipeline, training
data, training, evaluation, weights and ONNX export. The runtime samples the exported graphs
(``gid_engine/prediction/``)."""
