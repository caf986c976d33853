"""Model statuses (engine + manager) -> ModelInfo protos."""
from __future__ import annotations

from collections import defaultdict

from roiclass.server.errors import NotFound
from roiclass.server.states import ModelState
from roiclass.server.versions import version_key
from roiclass.v1 import classifier_pb2 as pb

_STATES = {state: pb.ModelVersionInfo.State.Value(state.value) for state in ModelState}


def model_infos(statuses, name: str = "", version: str = "") -> list[pb.ModelInfo]:
    """One ModelInfo per model name; with `name` just that one (NotFound if absent)."""
    by_name = defaultdict(list)
    for st in statuses:
        by_name[st.name].append(st)
    if name:
        if name not in by_name:
            known = ", ".join(sorted(by_name)) or "none"
            raise NotFound(f"model {name!r} not found; available models: {known}")
        by_name = {name: by_name[name]}
        if version and not any(st.version == version for st in by_name[name]):
            known = ", ".join(sorted((st.version for st in by_name[name]), key=version_key))
            raise NotFound(f"model {name!r} has no version {version!r}; available versions: {known}")
    infos = []
    for model_name in sorted(by_name):
        versions = sorted(by_name[model_name], key=lambda st: version_key(st.version))
        if version:
            versions = [st for st in versions if st.version == version]
        info = pb.ModelInfo(name=model_name)
        # Describe the model by its newest version that has a spec.
        spec = next((st.spec for st in reversed(versions) if st.spec is not None), None)
        if spec is not None:
            info.classes.extend(spec.classes)
            info.input_width, info.input_height, info.channels = spec.input_width, spec.input_height, spec.channels
            info.channel_order, info.normalization, info.layout = spec.channel_order, spec.normalization, spec.layout
            info.max_batch_size, info.resize, info.format = spec.max_batch_size, spec.resize, spec.format
            info.mean.extend(spec.mean)
            info.std.extend(spec.std)
            _pipeline_info(info, spec)
        for st in versions:
            info.versions.append(pb.ModelVersionInfo(
                version=st.version, state=_STATES.get(st.state, pb.ModelVersionInfo.STATE_UNSPECIFIED),
                reason=st.reason or "",
                instances=[pb.InstanceInfo(device=i.device, provider=i.provider, index=i.index, healthy=i.healthy)
                           for i in (st.instances or [])],
            ))
        infos.append(info)
    return infos


def _pipeline_info(info: pb.ModelInfo, spec) -> None:
    """[[children]], [detector], defaults.detector and defaults.tta; class indices in
    `when` and detector.classes are shown by name."""
    for child in spec.children:
        info.children.append(pb.ChildInfo(
            model=child.model, version=child.version, when=[_class_name(spec, c) for c in child.when],
            min_confidence=child.min_confidence, roi=child.roi))
    d = spec.detector
    if d is not None:
        info.detector.CopyFrom(pb.DetectorInfo(
            format=d.format, confidence=d.confidence, iou=d.iou,
            classes=[_class_name(spec, c) for c in d.classes], letterbox=d.letterbox))
    info.default_detector = spec.default_detector
    info.default_tta = spec.tta.text if spec.tta.name != "none" else ""


def _class_name(spec, ref) -> str:
    if isinstance(ref, int):
        return spec.classes[ref] if 0 <= ref < len(spec.classes) else str(ref)
    return ref
