"""Start a training run from a shipped model: copy the weights of its ONNX file back into the torch network.

The ONNX export folds every batch norm into the convolution before it (weight × γ/σ, bias β − μγ/σ), so the
shipped file has no batch-norm parameters. They are restored here as an identity plus the folded bias
(running mean −bias, variance 1 − ε, γ = 1, β = 0): the network then computes exactly what the ONNX model
computes while its batch norms stay in eval mode, which is why a run started this way keeps them frozen
(:func:`freeze_batch_norm`; a batch norm in training mode would normalise by batch statistics and forget the folded
scales).

torch and onnx are imported inside the functions.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from .._optional import import_optional
from ..errors import ConfigError


def onnx_path(init: Path) -> Path | None:
    """The ONNX file that ``init`` names (a model folder or a ``.onnx`` file), or None (a torch checkpoint)."""
    if init.is_dir():
        path = init / "model.onnx"
        if not path.is_file():
            raise ConfigError(f"--init {init}: a model folder must hold model.onnx")
        return path
    return init if init.suffix == ".onnx" else None


def model_reference(path: Path) -> str:
    """``path`` as a card records where weights or labels came from: a model folder also by its name, version and
    sha256, since a folder such as the built-in one is replaced by later versions."""
    card = path / "card.json" if path.is_dir() else path.parent / "card.json"
    if path.suffix == ".pt" or not card.is_file():
        return str(path)
    data = json.loads(card.read_text(encoding="utf-8"))
    return f"{path} ({data.get('name')} {data.get('version')}, sha256 {str(data.get('sha256'))[:12]}…)"


def _convolutions_in_order(torch: Any, net: Any, size: tuple[int, int]) -> list[Any]:
    """The network's convolutions in the order a forward pass runs them (the order of the exported graph)."""
    seen: list[Any] = []
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    hooks = [m.register_forward_hook(lambda m, _i, _o: seen.append(m)) for m in convs]
    try:
        was_training = net.training
        net.eval()
        with torch.no_grad():
            net(torch.zeros(1, 1, *size))
        net.train(was_training)
    finally:
        for h in hooks:
            h.remove()
    return seen


def _batch_norm_after(torch: Any, net: Any) -> dict[int, Any]:
    """id(convolution) → the batch norm that directly follows it inside a Sequential block."""
    after: dict[int, Any] = {}
    for block in net.modules():
        if isinstance(block, torch.nn.Sequential):
            children = list(block)
            for a, b in itertools.pairwise(children):
                if isinstance(a, torch.nn.Conv2d) and isinstance(b, torch.nn.BatchNorm2d):
                    after[id(a)] = b
    return after


def load_folded_onnx(torch: Any, net: Any, path: Path, size: tuple[int, int] = (64, 64)) -> int:
    """Copy the convolution weights of the ONNX model ``path`` into ``net`` (same architecture); returns the number
    of convolutions copied.

    Raises:
        ConfigError: the file's convolutions do not match the network's (another architecture or widths).
    """
    onnx = import_optional("onnx", "starting from an ONNX model")
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    nodes = [n for n in graph.node if n.op_type == "Conv"]
    convs = _convolutions_in_order(torch, net, size)
    if len(nodes) != len(convs):
        raise ConfigError(f"{path} has {len(nodes)} convolutions, the network {len(convs)}: another architecture")
    bn_after = _batch_norm_after(torch, net)
    with torch.no_grad():
        for node, conv in zip(nodes, convs):
            weight = tensors.get(node.input[1])
            if weight is None or tuple(weight.shape) != tuple(conv.weight.shape):
                shape = None if weight is None else tuple(weight.shape)
                raise ConfigError(f"{path}: convolution {node.name} has weights {shape}, the network expects "
                                  f"{tuple(conv.weight.shape)} (another architecture or other widths)")  # fmt: skip
            conv.weight.copy_(torch.from_numpy(weight.copy()))
            bias = tensors[node.input[2]] if len(node.input) > 2 else None
            bn = bn_after.get(id(conv))
            if bn is not None:
                bn.weight.fill_(1.0)
                bn.bias.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                bn.running_mean.copy_(torch.from_numpy(-bias.copy()) if bias is not None else 0.0)
            elif conv.bias is not None:
                conv.bias.copy_(torch.from_numpy(bias.copy()) if bias is not None else 0.0)
    return len(convs)


def freeze_batch_norm(torch: Any, net: Any) -> None:
    """Put every batch norm of ``net`` in eval mode (fixed statistics; γ and β still learn). Call after ``train()``."""
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
