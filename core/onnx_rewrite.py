"""Exact rewrites of an exported ONNX graph that make it cheaper to run.

:func:`pool_first` swaps a pointwise (1x1) convolution and the average pooling after it: both are
linear per pixel, so pooling first gives the same result with the convolution on a quarter of the
pixels (DenseNet's transitions: ONNX Runtime does not do this itself).
"""

from __future__ import annotations

from typing import Any


def _attributes(node) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _pointwise(conv) -> bool:
    """A 1x1 convolution with stride 1 and no padding: the same linear map at every pixel."""
    a = _attributes(conv)
    return (
        list(a.get("kernel_shape", [])) == [1, 1]
        and all(s == 1 for s in a.get("strides", [1, 1]))
        and not any(a.get("pads", []))
        and a.get("auto_pad", b"NOTSET") in (b"NOTSET", b"VALID")
    )


def _plain_pool(pool) -> bool:
    """An average pooling without padding or ceil mode: a mean over windows that never leave the image."""
    a = _attributes(pool)
    return (
        not any(a.get("pads", []))
        and not a.get("ceil_mode", 0)
        and a.get("auto_pad", b"NOTSET") in (b"NOTSET", b"VALID")
        and not any(d != 1 for d in a.get("dilations", []))
    )


def pool_first(model) -> int:
    """Swap, in place, each pointwise Conv whose only consumer is a plain AveragePool; return how many.

    The pool takes the convolution's input and the convolution the pool's output; their places in
    the node list are swapped, which keeps the list in topological order (nothing else reads the
    convolution's output). The tensor between them changes shape, so its recorded shape is dropped.
    """
    graph = model.graph
    readers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    nodes = list(graph.node)
    position = {id(node): i for i, node in enumerate(nodes)}
    count, stale = 0, set()
    for conv in nodes:
        users = readers.get(conv.output[0], []) if conv.op_type == "Conv" else []
        if len(users) != 1 or users[0].op_type != "AveragePool" or conv.output[0] in outputs:
            continue
        pool = users[0]
        if not (_pointwise(conv) and _plain_pool(pool)):
            continue
        source, middle, target = conv.input[0], conv.output[0], pool.output[0]
        pool.input[0], pool.output[0] = source, middle
        conv.input[0], conv.output[0] = middle, target
        i, j = position[id(conv)], position[id(pool)]
        nodes[i], nodes[j] = nodes[j], nodes[i]
        position[id(conv)], position[id(pool)] = j, i
        count += 1
        stale.add(middle)
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [info for info in graph.value_info if info.name not in stale]
    del graph.value_info[:]
    graph.value_info.extend(kept)
    return count
