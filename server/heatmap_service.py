"""Relevance heatmaps (occlusion sensitivity). Not implemented yet: None means
the servicer answers UNIMPLEMENTED for create_relevance_heatmap."""
from __future__ import annotations


def make_heatmap_service(engine):
    return None
