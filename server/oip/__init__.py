"""The Open Inference Protocol (KServe v2 / Triton) beside roiclass.v1.

tensors.py: the protocol's tensors and the one datatype table; core.py: the
protocol-neutral operations (InferenceProtocol) over the engine and the model
manager; grpc_servicer.py: inference.GRPCInferenceService over the core;
http/: the same protocol over HTTP/REST.
"""
