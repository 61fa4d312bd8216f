"""Shipped data files of the engine (ONNX graphs, statistics). Not code."""
