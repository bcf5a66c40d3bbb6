"""Feature networks other than the reference classifier: ``eval.features``.

- ``"my_pkg.feats:extractor"``: your own, by import path. ``extractor(shape)`` gets the data's
  ``(C, H, W)`` and returns a ``torch.nn.Module`` that maps float32 images ``(N, C, H, W)`` in
  [0, 1] to features ``(N, D)``; it runs in eval mode without gradients.
- ``"PATH"`` (any path to a file): a TorchScript module (``torch.jit.save``) of the same kind,
  or, for a path ending in ``.pt2``, a ``torch.export`` program (``torch.export.save``).
- ``"inception:WEIGHTS_FILE"``: the Inception-v3 of FID papers (TensorFlow's 2015-12-05 graph, as
  torch-fidelity and pytorch-fid run it: bilinear resize to 299, 2048-d pool features), from a
  local weights file (torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth``; no machine
  here downloads weights). Needs ``pip install -e '.[inception]'`` (torch-fidelity). Grey
  images are given three equal channels.

On these features gansearch computes every metric that needs no classes: ``cfd`` (with Inception
weights, the standard FID), ``kid``, ``precision``, ``recall``, ``density``, ``manifold_coverage``
(the k-NN manifolds on the raw features, as prdc and torch-fidelity do). The metrics of class
probabilities (``cis``, ``coverage``, ``class_kl``, ``cond_acc``) are left out by name.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gan_core.errors import GansearchError
from gan_core.metrics import cache
from gan_core.metrics.classifier import Embedding

VERSION = 1
INCEPTION_PREFIX = "inception:"


class FeaturesError(GansearchError):
    """An ``eval.features`` that does not load or breaks its contract."""


def kind_of(spec: str) -> str:
    if spec.startswith(INCEPTION_PREFIX):
        return "inception"
    if ":" in spec and not Path(spec).exists():
        return "module"
    return "torchscript"


@dataclass
class ExternalFeatures:
    """A feature network ready for scoring (the reference classifier's counterpart)."""

    spec: str  # eval.features as written
    kind: str  # module | torchscript | inception
    model: nn.Module
    shape: tuple[int, int, int]
    weights_digest: str
    source: bytes = b""  # the file's bytes (torchscript, inception): what a search ships to its trials
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    num_classes: int = 0  # no class probabilities

    @property
    def key(self) -> str:
        return cache.digest({"version": VERSION, "kind": self.kind, "weights": self.weights_digest,
                             "shape": list(self.shape)})

    @property
    def digest(self) -> str:
        """Short hash of the weights: results scored by different networks are not comparable."""
        return self.weights_digest[:12]

    @property
    def preprocess_id(self) -> dict[str, Any]:
        return {"features": self.kind, "scale": "uint8" if self.kind == "inception" else "uint8/255"}

    @torch.no_grad()
    def embed(self, images: Tensor, *, batch: int = 250) -> Embedding:
        feats = []
        for i in range(0, len(images), batch):
            x = images[i:i + batch].to(self.device)
            if self.kind == "inception":
                if x.shape[1] == 1:
                    x = x.expand(-1, 3, -1, -1)
                out = self.model(x)
                f = out[0] if isinstance(out, (tuple, list)) else out
            else:
                f = self.model(x.float() / 255.0)
            if not isinstance(f, Tensor) or f.dim() != 2 or f.shape[0] != x.shape[0]:
                got = tuple(f.shape) if isinstance(f, Tensor) else type(f).__name__
                raise FeaturesError(f"eval.features: {self.spec} must return features (N, D) for images "
                                    f"{tuple(x.shape)}, got {got}")
            feats.append(f.float().cpu())
        if not feats:
            raise ValueError("no images to embed")
        features = torch.cat(feats)
        if not torch.isfinite(features).all():
            raise FeaturesError(f"eval.features: {self.spec} returned non-finite features")
        return Embedding(features, None, features)

    def to_bytes(self) -> bytes:
        """What a search driver ships to its trials: the spec and the file it names."""
        buf = io.BytesIO()
        torch.save({"spec": self.spec, "kind": self.kind, "shape": list(self.shape), "source": self.source}, buf)
        return buf.getvalue()


def _state_digest(model: nn.Module) -> str:
    return cache.digest({k: v.detach().cpu() for k, v in model.state_dict().items()})


# Files a search's driver read and shipped to this process (a trial on a node without them).
_SHIPPED_FILES: dict[str, bytes] = {}


def provide_file(path: str, blob: bytes) -> None:
    """Make ``eval.features`` naming the file ``path`` (absolute) use ``blob`` instead of reading it."""
    _SHIPPED_FILES[path] = blob


def file_of(spec: str) -> Path | None:
    """The file ``spec`` names (a TorchScript/export file, or inception's weights), None for a module."""
    kind = kind_of(spec)
    if kind == "module":
        return None
    return Path(spec[len(INCEPTION_PREFIX):].strip() if kind == "inception" else spec).expanduser()


def _read(path: Path, spec: str) -> bytes:
    if str(path) in _SHIPPED_FILES:
        return _SHIPPED_FILES[str(path)]
    try:
        return path.expanduser().read_bytes()
    except FileNotFoundError:
        raise FeaturesError(f"eval.features: {spec}: no such file") from None
    except OSError as exc:
        raise FeaturesError(f"eval.features: {spec}: {exc.strerror or exc}") from None


def _from_module(spec: str, shape: tuple[int, int, int]) -> nn.Module:
    from gan_core.user_arch import ArchError, load_builder

    try:
        factory = load_builder(spec)
    except ArchError as exc:
        raise FeaturesError(str(exc).replace("model.arch", "eval.features", 1)) from None
    try:
        model = factory(shape)
    except Exception as exc:
        raise FeaturesError(f"eval.features: {spec} raised {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:200]}") from None
    if not isinstance(model, nn.Module):
        raise FeaturesError(f"eval.features: {spec} must return a torch.nn.Module, got {type(model).__name__}")
    return model


def _from_torchscript(spec: str, blob: bytes) -> nn.Module:
    if spec.endswith(".pt2"):  # torch.export's format, TorchScript's successor
        try:
            return torch.export.load(io.BytesIO(blob)).module()
        except Exception as exc:
            raise FeaturesError(f"eval.features: {spec} is not a torch.export file "
                                f"({' '.join(str(exc).split())[:160]})") from None
    try:
        return torch.jit.load(io.BytesIO(blob), map_location="cpu")
    except Exception as exc:  # torch raises RuntimeError and others for foreign bytes
        raise FeaturesError(f"eval.features: {spec} is not a TorchScript file ({' '.join(str(exc).split())[:160]}); "
                            "save one with torch.jit.save(torch.jit.script(model), PATH)") from None


def _from_inception(spec: str, blob: bytes) -> nn.Module:
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError:
        raise FeaturesError("eval.features: inception needs torch-fidelity: pip install -e '.[inception]' "
                            "in a clone of gansearch") from None
    try:  # plain tensors only (torch-fidelity itself would unpickle anything)
        state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise FeaturesError(f"eval.features: {spec}: not a weights file of tensors "
                            f"({' '.join(str(exc).split())[:160]})") from None
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".pth") as tmp:
        torch.save(state, tmp.name)
        try:
            return FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=tmp.name)
        except RuntimeError as exc:
            raise FeaturesError(f"eval.features: {spec}: not Inception-v3 FID weights "
                                f"({' '.join(str(exc).split())[:160]})") from None


def load_features(spec: str, shape: tuple[int, int, int], *, device: torch.device | str = "cpu",
                  source: bytes | None = None) -> ExternalFeatures:
    """The feature network ``spec`` names, for images of ``shape``, checked on two images.

    ``source`` is the named file's bytes when they came from elsewhere (a search's driver)."""
    kind = kind_of(spec)
    blob = b""
    if kind == "module":
        model = _from_module(spec, shape)
    elif kind == "torchscript":
        blob = source if source is not None else _read(Path(spec), spec)
        model = _from_torchscript(spec, blob)
    else:
        path = spec[len(INCEPTION_PREFIX):].strip()
        if not path:
            raise FeaturesError("eval.features: inception:WEIGHTS_FILE needs the path of the weights file")
        blob = source if source is not None else _read(Path(path), spec)
        model = _from_inception(spec, blob)
    device = torch.device(device)
    if not spec.endswith(".pt2"):  # an exported program keeps the mode it was exported in (export it in eval)
        model = model.to(device).eval()
    net = ExternalFeatures(spec, kind, model, tuple(shape), "", blob, device)  # type: ignore[arg-type]
    with torch.no_grad():  # the contract, checked before any training (and lazy layers made whole)
        net.embed(torch.zeros(2, *shape, dtype=torch.uint8))
    for param in model.parameters():  # (a ScriptModule has no requires_grad_ of its own)
        param.requires_grad_(False)
    net.weights_digest = hashlib.sha256(blob).hexdigest() if blob else _state_digest(model)
    return net


def install_features(blob: bytes, device: torch.device | str = "cpu") -> ExternalFeatures:
    """The feature network a search's driver shipped (``ExternalFeatures.to_bytes``)."""
    body = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    return load_features(body["spec"], tuple(body["shape"]), device=device, source=body["source"] or None)
