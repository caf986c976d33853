"""Relevance heatmaps by occlusion sensitivity (see docs/heatmap.md).

occlusion: parameters, patch positions, occluded tensors, drops -> relevance grid.
rendering: relevance grid (model-input space) -> GRAY8 image of the ROI.
service: drives them through the engine for the servicer (HeatmapService).
"""
