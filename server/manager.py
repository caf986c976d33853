"""ModelManager: keeps the engine in step with the model sources.

Sources are repository folders, single model paths and ready-made specs.
A scan turns them into ModelSpecs and LoadFailures keyed by (name,
version). Each spec gets a fingerprint (the spec itself plus the size,
mtime and sha256 of its files), so a reload loads only new or changed
versions, then unloads the ones that are gone. engine.load keeps the
previous model serving until the new one is ready, and engine.unload waits
for in-flight jobs, so requests are never failed by a reload.

Every scan also checks the models' [[children]] against the sources
(models/children_graph.py): a version whose children name an unknown model,
loop or go too deep is a failure like any other (FAILED with the reason,
not loaded; unloaded if it was). A child unloaded on request (unload_model)
still exists in the sources: its parents stay READY and only their trees'
entries for it fail (UNAVAILABLE), so unload_model needs no new check.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from roiclass.server.engine.config import ModelVersionStatus
from roiclass.server.errors import AlreadyExists, NotFound, Unavailable
from roiclass.server.models.children_graph import check_children
from roiclass.server.models.digest import sha256_file
from roiclass.server.models.errors import ModelConfigError
from roiclass.server.models.repository import LoadFailure, load_model_path, load_repository
from roiclass.server.models.spec import ModelSpec
from roiclass.server.models.uploads import UploadFolder
from roiclass.server.states import ModelState
from roiclass.server.versions import version_key

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (name, version)


class _Hasher:
    """sha256 of files, recomputed only when size or mtime changed."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[int, int, str]] = {}

    def stamp(self, path: Path | None) -> tuple:
        if path is None:
            return ()
        try:
            st = path.stat()
        except OSError:
            return (str(path), "missing")
        key = str(path)
        if path.is_dir():
            return (key, "folder")
        hit = self._cache.get(key)
        if hit is None or hit[:2] != (st.st_size, st.st_mtime_ns):
            try:
                digest = sha256_file(path)
            except OSError:  # replaced or removed while we looked: the next scan sees it
                return (key, "unreadable", st.st_size, st.st_mtime_ns)
            hit = (st.st_size, st.st_mtime_ns, digest)
            self._cache[key] = hit
        # The content hash alone decides: a touched but unchanged file is not reloaded.
        return (key, hit[2])


class ModelManager:
    """Ties model sources to the engine; safe to call from several threads."""

    def __init__(
        self,
        engine,
        *,
        repositories: list[Path],
        model_paths: list[Path],
        extra_specs: list[ModelSpec],
        default_model: str | None,
        dlpk_cache: Path | None = None,
        load_threads: int = 2,
    ):
        self._engine = engine
        self._repositories = [Path(p) for p in repositories]
        self._model_paths = [Path(p) for p in model_paths]
        self._uploads = UploadFolder()  # models sent as files (upload_model)
        self._extra_specs = list(extra_specs)
        self._default = default_model or None
        self._dlpk_cache = dlpk_cache
        self._load_threads = max(1, load_threads)
        self._hasher = _Hasher()
        self._state_lock = threading.Lock()  # guards the maps below
        self._reload_lock = threading.Lock()  # one scan/load/unload at a time
        self._loaded: dict[Key, tuple] = {}  # key -> fingerprint of what the engine has
        self._failures: dict[Key, LoadFailure] = {}
        # Loaded versions whose new files failed to load: still serving the old ones.
        self._stale: dict[Key, str] = {}
        self._names: list[str] = []
        # Names unloaded on request (unload_model): no scan loads them until load_model.
        self._held: set[str] = set()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._on_change: Callable[[], None] | None = None

    # -- scanning ---------------------------------------------------------

    def _scan(self) -> list[ModelSpec | LoadFailure]:
        items: list[ModelSpec | LoadFailure] = []
        for repo in self._repositories:
            try:
                items.extend(load_repository(repo, self._dlpk_cache))
            except (ModelConfigError, OSError) as exc:
                items.append(LoadFailure(repo.name, "", str(exc), repo))
        for path in self._model_paths:
            items.extend(load_model_path(path, self._dlpk_cache))
        items.extend(self._extra_specs)
        # A (name, version) given by two sources: the first one wins.
        seen: dict[Key, ModelSpec | LoadFailure] = {}
        out = []
        for item in items:
            key = (item.name, item.version)
            if key in seen:
                first = seen[key]
                src = first.source if isinstance(first, LoadFailure) else (first.source or first.onnx_path)
                log.warning("model %s version %s is defined twice; keeping the one from %s", key[0], key[1], src)
                continue
            seen[key] = item
            out.append(item)
        return out

    def _fingerprint(self, spec: ModelSpec) -> tuple:
        files = (spec.onnx_path, spec.golden_image, spec.source)
        return (spec,) + tuple(self._hasher.stamp(Path(f)) for f in files if f is not None)

    # -- loading ----------------------------------------------------------

    def _engine_states(self) -> dict[Key, ModelState]:
        try:
            return {(st.name, st.version): st.state for st in self._engine.status()}
        except Exception:  # noqa: BLE001 - status is best effort here
            log.exception("engine.status() failed")
            return {}

    def _load_one(self, spec: ModelSpec) -> None:
        log.info("loading model %s version %s from %s", spec.name, spec.version, spec.source or spec.onnx_path)
        try:
            self._engine.load(spec)
        except Exception as exc:  # noqa: BLE001 - engine.load should record, never raise
            log.exception("engine.load(%s, %s) raised", spec.name, spec.version)
            with self._state_lock:
                self._failures[(spec.name, spec.version)] = LoadFailure(
                    spec.name, spec.version, f"load failed: {exc}", spec.source or spec.onnx_path
                )

    def _sync(self, retry_failed: bool) -> bool:
        """Scan, load new/changed versions, unload removed ones. True if anything changed."""
        items = self._scan()
        engine_states = self._engine_states()
        specs: dict[Key, ModelSpec] = {}
        failures: dict[Key, LoadFailure] = {}
        stale: dict[Key, str] = {}
        held: set[str] = set()  # held names the sources still have
        scanned: list[ModelSpec] = []
        for item in items:
            key = (item.name, item.version)
            if isinstance(item, LoadFailure):
                # No version: the whole model (e.g. its config.toml) is broken now.
                serving = [k for k in self._loaded if k == key or (not item.version and k[0] == item.name)]
                for k in serving:
                    stale[k] = item.reason
                if serving and self._stale.get(serving[0]) != item.reason:
                    # Keep serving what the engine has; report why the new files were refused.
                    log.warning("model %s version %s: new files refused, still serving the previous ones: %s",
                                item.name, item.version, item.reason)
                elif not serving:
                    failures[key] = item
                    if self._failures.get(key) != item:  # once, not on every poll
                        log.warning("model %s version %s failed: %s", item.name, item.version or "-", item.reason)
            elif item.name not in self._held:
                specs[key] = item
            else:
                held.add(item.name)
            if not isinstance(item, LoadFailure):
                scanned.append(item)
        self._check_children(scanned, items, specs, failures)

        fingerprints = {key: self._fingerprint(spec) for key, spec in specs.items()}
        to_load = [
            specs[key] for key, fp in fingerprints.items()
            if self._loaded.get(key) != fp or (retry_failed and engine_states.get(key) == ModelState.FAILED)
        ]
        keep = set(specs) | set(stale)
        to_unload = [key for key in self._loaded if key not in keep]

        with self._state_lock:
            self._failures = failures
            self._stale = stale
            self._names = sorted({k[0] for k in specs} | {k[0] for k in stale} | {k[0] for k in failures} | held)
        if to_load:
            to_load.sort(key=lambda s: (s.name, version_key(s.version)))
            workers = min(self._load_threads, len(to_load))
            with ThreadPoolExecutor(workers, thread_name_prefix="model-load") as pool:
                list(pool.map(self._load_one, to_load))
        for name, version in to_unload:
            log.info("unloading model %s version %s (gone from its source)", name, version)
            try:
                self._engine.unload(name, version)
            except Exception:  # noqa: BLE001 - one failed unload must not stop the rest
                log.exception("engine.unload(%s, %s) failed", name, version)
        with self._state_lock:
            for spec in to_load:
                self._loaded[(spec.name, spec.version)] = fingerprints[(spec.name, spec.version)]
            for key in to_unload:
                self._loaded.pop(key, None)
        return bool(to_load or to_unload)

    def _check_children(self, scanned: list[ModelSpec], items: list, specs: dict[Key, ModelSpec],
                        failures: dict[Key, LoadFailure]) -> None:
        """Specs whose [[children]] name an unknown model, loop or go too deep
        (models/children_graph.py) become failures: not loaded (or unloaded when
        a change made them wrong), FAILED with the reason."""
        known: dict[str, list[str]] = {}
        for item in items:  # failed and held models are children that exist
            known.setdefault(item.name, []).extend([item.version] if item.version else [])
        for key, reason in check_children(scanned, known).items():
            spec = specs.pop(key, None)
            if spec is None:
                continue  # held: unloaded on request, checked again when loaded
            failures[key] = LoadFailure(spec.name, spec.version, reason, spec.source or spec.onnx_path)
            if self._failures.get(key) != failures[key]:
                log.warning("model %s version %s failed: %s", spec.name, spec.version, reason)

    def load_all(self) -> None:
        """Load every model of every source (failures are recorded, never raised)."""
        with self._reload_lock:
            self._sync(retry_failed=True)

    def reload(self, retry_failed: bool = True) -> None:
        """Rescan the sources: load new/changed versions, then unload removed ones."""
        with self._reload_lock:
            changed = self._sync(retry_failed)
        if changed:
            self._changed()

    def load_model(self, name: str) -> None:
        """Load (or reload) one model's versions from the sources, ending an
        unload_model hold; NotFound when no source has the name. The scan also
        brings the other models in step, as reload() does."""
        with self._reload_lock:
            self._held.discard(name)
            self._sync(retry_failed=True)
            if name not in self._names:
                raise NotFound(f"model {name!r} is in no model source; models: {', '.join(self._names) or 'none'}")
        self._changed()

    def upload_model(self, name: str, files: dict[str, bytes]) -> None:
        """A model sent as files (RepositoryModelLoad's `file:` parameters): written into
        this server's upload folder (models/uploads.py), then loaded as load_model does.
        A name another source already serves cannot be replaced this way."""
        with self._reload_lock:
            uploaded = {self._uploads.model_of(p) for p in self._model_paths}
            if name in self._names and name not in uploaded:
                raise AlreadyExists(f"model {name!r} is served from its own source "
                                    "(--models, --model): an upload cannot replace it")
            path = self._uploads.write(name, files)
            self._model_paths = [p for p in self._model_paths if self._uploads.model_of(p) != name] + [path]
        log.info("model %s uploaded: %d files, served from %s", name, len(files), path)
        self.load_model(name)

    def unload_model(self, name: str) -> None:
        """Unload every version of one model (in-flight requests finish first) and keep
        it unloaded (reloads and polls skip it) until load_model(name)."""
        with self._reload_lock:
            keys = [key for key in self._loaded if key[0] == name]
            if not keys and name not in self._names:
                raise NotFound(f"model {name!r} not found; models: {', '.join(self._names) or 'none'}")
            self._held.add(name)
            for key in keys:
                log.info("unloading model %s version %s (unload requested)", *key)
                try:
                    self._engine.unload(*key)
                except NotFound:
                    pass  # never loaded by the engine
                with self._state_lock:
                    self._loaded.pop(key, None)
            with self._state_lock:
                self._failures = {k: f for k, f in self._failures.items() if k[0] != name}
        self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            try:
                self._on_change()
            except Exception:  # noqa: BLE001 - a callback bug must not stop polling or fail a call
                log.exception("model change callback failed")

    # -- polling ----------------------------------------------------------

    def start_polling(self, interval_s: float, on_change: Callable[[], None] | None = None) -> None:
        """Reload every interval_s seconds in a daemon thread; on_change runs after a change."""
        if interval_s <= 0:
            raise ValueError(f"poll interval must be > 0 seconds, got {interval_s}")
        if on_change is not None:
            self._on_change = on_change
        if self._poller is not None and self._poller.is_alive():
            return
        self._stop.clear()

        def run() -> None:
            while not self._stop.wait(interval_s):
                try:
                    # A model that failed with unchanged files would fail again: retry only on change.
                    self.reload(retry_failed=False)
                except Exception:  # noqa: BLE001 - keep polling whatever happens
                    log.exception("model repository poll failed")

        self._poller = threading.Thread(target=run, name="model-poll", daemon=True)
        self._poller.start()

    def stop(self) -> None:
        """Stop polling (the engine's models stay loaded; the engine closes them)."""
        self._stop.set()
        poller, self._poller = self._poller, None
        if poller is not None and poller is not threading.current_thread():
            poller.join()
        self._uploads.close()

    # -- views ------------------------------------------------------------

    @property
    def default_model(self) -> str:
        """The configured default, else the first model name in sorted order, "" when none."""
        if self._default:
            return self._default
        with self._state_lock:
            return self._names[0] if self._names else ""

    def knows(self, name: str) -> bool:
        """Whether `name` is a model of the sources (loaded or failed)."""
        return name in self._names  # a list swapped whole on reload: safe to read

    def resolve(self, name: str, version: str = ""):
        """engine.resolve(), except that a model known only by its load failure
        (never loaded, or unloaded by the scan that failed it: its children
        changed) is UNAVAILABLE with the reason, not NOT_FOUND."""
        try:
            return self._engine.resolve(name, version)
        except (NotFound, Unavailable):
            with self._state_lock:
                failed = [f for (n, v), f in self._failures.items() if n == name and version in ("", v)]
            if failed and any(s != ModelState.UNLOADED for k, s in self._engine_states().items()
                              if k[0] == name and version in ("", k[1])):
                raise  # the engine's own reason (e.g. a version still LOADING) comes first
            if failed:
                raise Unavailable(f"model {name!r} version {failed[-1].version} failed to load: "
                                  f"{failed[-1].reason}") from None
            raise

    def statuses(self) -> list[ModelVersionStatus]:
        """engine.status() plus the manager's failures (state FAILED)."""
        try:
            engine = list(self._engine.status())
        except Exception:  # noqa: BLE001
            log.exception("engine.status() failed")
            engine = []
        with self._state_lock:
            failures = dict(self._failures)
            stale = dict(self._stale)
        out = []
        known = set()
        for st in engine:
            key = (st.name, st.version)
            known.add(key)
            if key in failures and st.state == ModelState.UNLOADED:
                # Unloaded because the scan failed it (its children changed): say why.
                st = replace(st, state=ModelState.FAILED, reason=failures[key].reason, instances=[])
            if key in stale:
                note = f"serving the previous files; the new ones were refused: {stale[key]}"
                st = replace(st, reason=f"{st.reason}; {note}" if st.reason else note)
            out.append(st)
        for key, failure in failures.items():
            if key not in known:
                out.append(ModelVersionStatus(name=failure.name, version=failure.version, state=ModelState.FAILED,
                                              reason=failure.reason, spec=None, instances=[]))
        out.sort(key=lambda st: (st.name, version_key(st.version)))
        return out
