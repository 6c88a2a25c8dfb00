"""Exact rewrites of an ONNX graph that make it cheaper to run.

:func:`pool_first` swaps a pointwise (1x1) convolution and the average pooling after it: both are
linear per pixel, so pooling first gives the same result with the convolution on a quarter of the
pixels (DenseNet's transitions: ONNX Runtime does not do this itself). ``r2l export`` applies it.

The others serve static int8 (``core/quantize.py``), where ONNX Runtime is fast only at int8
convolutions: :func:`norm_as_depthwise_conv` and :func:`pool_as_depthwise_conv` turn DenseNet's
pre-activation norms and its transitions' average pooling into the identical depthwise
convolutions, :func:`stride_as_depth` turns the stem's strided convolution over one channel into a
denser one over four, all before quantisation, and :func:`byte_concats` lets a quantised Concat
whose inputs and output share one scale and zero point join the int8 bytes directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np


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
    _replace_nodes(model, nodes)
    kept = [info for info in graph.value_info if info.name not in stale]
    del graph.value_info[:]
    graph.value_info.extend(kept)
    return count


def norm_as_depthwise_conv(model) -> int:
    """Rewrite each inference BatchNormalization (a per-channel scale and shift) of ``model`` in place
    as the equivalent depthwise 1x1 Conv; return how many.

    DenseNet normalises the concatenated features before every layer, where no Conv can absorb the
    norm. Left as it is, the int8 graph dequantises, normalises in float and quantises again in
    every layer (and ONNX Runtime cannot keep its int8 convolutions channels-last across it); as a
    Conv it becomes one more int8 convolution (QLinearConv) and the graph stays int8 throughout.
    """
    from onnx import numpy_helper

    constants = {t.name: t for t in model.graph.initializer}
    nodes, count = [], 0
    for node in model.graph.node:
        names = list(node.input)
        if node.op_type != "BatchNormalization" or len(node.output) != 1 or not all(n in constants for n in names[1:]):
            nodes.append(node)
            continue
        gamma, beta, mean, var = (numpy_helper.to_array(constants[n]).astype(np.float64) for n in names[1:5])
        eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
        scale = gamma / np.sqrt(var + eps)
        weight = numpy_helper.from_array(scale.astype(np.float32).reshape(-1, 1, 1, 1), node.output[0] + "_dw_weight")
        bias = numpy_helper.from_array((beta - mean * scale).astype(np.float32), node.output[0] + "_dw_bias")
        model.graph.initializer.extend([weight, bias])
        nodes.append(_depthwise(node, [names[0], weight.name, bias.name], len(scale), kernel_shape=[1, 1]))
        count += 1
    _replace_nodes(model, nodes)
    _drop_unread_initializers(model)
    return count


def pool_as_depthwise_conv(model) -> int:
    """Rewrite each plain 2-D AveragePool of ``model`` whose channel count shape inference knows, in
    place, as the equivalent depthwise Conv (every weight 1/window); return how many.

    ONNX Runtime's int8 average pooling runs at about a tenth of the speed of its int8 depthwise
    convolution (DenseNet121's three transitions at 640 px: 12 ms against 1.2 ms on two cores).
    """
    from onnx import numpy_helper

    shapes = _shapes(model)
    nodes, count = [], 0
    for node in model.graph.node:
        kernel = list(_attributes(node).get("kernel_shape", [])) if node.op_type == "AveragePool" else []
        shape = shapes.get(node.input[0], [])
        width = shape[1] if len(kernel) == 2 and len(shape) == 4 and _plain_pool(node) else 0
        if not width:
            nodes.append(node)
            continue
        weight = np.full((width, 1, *kernel), 1 / np.prod(kernel), np.float32)
        weight = numpy_helper.from_array(weight, node.output[0] + "_dw_weight")
        model.graph.initializer.append(weight)
        strides = list(_attributes(node).get("strides", [1, 1]))
        nodes.append(_depthwise(node, [node.input[0], weight.name], width, kernel_shape=kernel, strides=strides))
        count += 1
    _replace_nodes(model, nodes)
    return count


def stride_as_depth(model, most_channels: int = 4) -> int:
    """Rewrite, in place, each stride-2 Conv over at most ``most_channels`` input channels whose input
    shape is known as SpaceToDepth (2x2 blocks: four times the channels, half the height and width)
    and a stride-1 Conv with the same outputs; return how many.

    A 7x7 convolution over one channel multiplies only 49 values per output, too few for ONNX
    Runtime's int8 kernels to run near their speed; over the space-to-depth input it becomes a 4x4
    convolution over four channels (64 values, zero where the 8x8 window exceeds the 7x7 one).
    """
    from onnx import helper, numpy_helper

    shapes = _shapes(model)
    constants = {t.name: t for t in model.graph.initializer}
    nodes, count = [], 0
    for node in model.graph.node:
        plan = _depth_plan(node, constants, shapes, most_channels) if node.op_type == "Conv" else None
        if plan is None:
            nodes.append(node)
            continue
        weight, pads = plan
        weight = numpy_helper.from_array(weight, node.input[1] + "_space_to_depth")
        model.graph.initializer.append(weight)
        blocks = node.input[0] + "_space_to_depth"
        nodes.append(helper.make_node("SpaceToDepth", [node.input[0]], [blocks], blocksize=2, name=blocks))
        inputs = [blocks, weight.name, *node.input[2:]]
        nodes.append(helper.make_node("Conv", inputs, list(node.output), name=blocks + "_conv", pads=pads))
        count += 1
    _replace_nodes(model, nodes)
    _drop_unread_initializers(model)
    return count


def _depth_plan(conv, constants: dict, shapes: dict, most_channels: int) -> tuple[np.ndarray, list[int]] | None:
    """The stride-1 weights and pads that do ``conv``'s work on the 2x2 space-to-depth of its input, or
    None where the rewrite does not apply or would not be exact."""
    from onnx import numpy_helper

    a = _attributes(conv)
    if conv.input[1] not in constants or a.get("group", 1) != 1 or list(a.get("strides", [])) != [2, 2]:
        return None
    if any(d != 1 for d in a.get("dilations", [])) or a.get("auto_pad", b"NOTSET") != b"NOTSET":
        return None
    weight = numpy_helper.to_array(constants[conv.input[1]])
    before, after = shapes.get(conv.input[0], []), shapes.get(conv.output[0], [])
    if weight.ndim != 4 or weight.shape[1] > most_channels or len(before) != 4 or len(after) != 4:
        return None
    if not all(before[2:] + after[2:]) or any(d % 2 for d in before[2:]):
        return None
    out_channels, channels = weight.shape[:2]
    pads = list(a.get("pads", [0, 0, 0, 0]))
    shift = [p % 2 for p in pads[:2]]  # pad one more row (column) in front so that the blocks line up
    kernel = [(k + s + 1) // 2 for k, s in zip(weight.shape[2:], shift, strict=True)]
    front = [(p + s) // 2 for p, s in zip(pads[:2], shift, strict=True)]
    back = [o + k - 1 - f - d // 2 for o, k, f, d in zip(after[2:], kernel, front, before[2:], strict=True)]
    if min(back) < 0:
        return None
    wide = np.zeros((out_channels, channels, 2 * kernel[0], 2 * kernel[1]), weight.dtype)
    wide[:, :, shift[0] : shift[0] + weight.shape[2], shift[1] : shift[1] + weight.shape[3]] = weight
    # SpaceToDepth puts input pixel (2u + r, 2v + q) of channel c at channel (2r + q) * channels + c
    blocks = wide.reshape(out_channels, channels, kernel[0], 2, kernel[1], 2).transpose(0, 3, 5, 1, 2, 4)
    return blocks.reshape(out_channels, 4 * channels, *kernel), front + back


def _shapes(model) -> dict[str, list[int]]:
    """Each tensor's shape as ONNX shape inference knows it (0 for a dimension it does not know)."""
    from onnx import shape_inference

    known = shape_inference.infer_shapes(model).graph
    return {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in [*known.value_info, *known.input]}


def _depthwise(node, inputs: list[str], channels: int, **attributes):
    from onnx import helper

    name = (node.name or node.output[0]) + "_dw"
    return helper.make_node("Conv", inputs, list(node.output), name=name, group=channels, **attributes)


def _replace_nodes(model, nodes: list) -> None:
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def byte_concats(model) -> int:
    """In a QDQ int8 ``model``, let each Concat whose inputs are all dequantised, and whose only reader
    quantises it, with one and the same scale and zero point join the int8 tensors themselves; drop
    the quantisation and the dequantisations that nothing else reads. Return how many.

    Exact: with one scale and zero point throughout, dequantising, joining and quantising again gives
    back the same bytes. ONNX Runtime's plain Concat copies them faster than its QLinearConcat (11 ms
    against 16 ms for DenseNet121 at 640 px on two cores).
    """
    from onnx import numpy_helper

    graph = model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producer = {name: node for node in graph.node for name in node.output}
    readers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)

    def parameters(node) -> tuple | None:
        values = [constants.get(name) for name in node.input[1:3]]
        return None if any(v is None or v.size != 1 for v in values) else tuple(v.item() for v in values)

    quantisations, count = set(), 0
    for node in graph.node:
        sources = [producer.get(name) for name in node.input]
        users = readers.get(node.output[0], [])
        if node.op_type != "Concat" or len(users) != 1 or users[0].op_type != "QuantizeLinear":
            continue
        if not all(s is not None and s.op_type == "DequantizeLinear" for s in sources):
            continue
        shared = {parameters(s) for s in [*sources, users[0]]}
        if len(shared) != 1 or None in shared:
            continue
        del node.input[:]
        node.input.extend(s.input[0] for s in sources)
        node.output[0] = users[0].output[0]
        quantisations.add(id(users[0]))
        count += 1
    _replace_nodes(model, [n for n in graph.node if id(n) not in quantisations])
    read = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    _replace_nodes(model, [n for n in graph.node if n.op_type != "DequantizeLinear" or n.output[0] in read])
    _drop_unread_initializers(model)
    return count


def _drop_unread_initializers(model) -> None:
    """Drop the constants no node reads any more (ONNX Runtime warns once per such constant)."""
    read = {name for node in model.graph.node for name in node.input}
    kept = [t for t in model.graph.initializer if t.name in read]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
