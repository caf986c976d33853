"""The Open Inference Protocol (KServe v2 / Triton) messages, package `inference`.

Generated at build time from grpc_service.proto and model_config.proto
(setup.py GenerateProtos), like roiclass.v1.
"""
