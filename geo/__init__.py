"""roiclass.geo: GIS batch classification (`roiclass geo`, README: GIS).

A raster (or an image collection) and a feature layer in, the same features
out with a class label, as ArcGIS's "Classify Objects Using Deep Learning".
"""
