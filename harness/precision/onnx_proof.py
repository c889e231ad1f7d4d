"""Proof for an ONNX model (ONNX Runtime GenAI's builder output), read from the graph itself: the element type and
stored bytes of every initializer, and what holds each decoder linear layer's weight (MatMulNBits with its bits and
block size, or a plain MatMul on a float initializer)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from harness.core.errors import ProofError
from harness.precision.proof import Proof

_TYPE_BYTES = {"FLOAT": 4, "FLOAT16": 2, "BFLOAT16": 2, "UINT8": 1, "INT8": 1, "INT32": 4, "INT64": 8}


def _graph(folder: Path):
    import onnx

    return onnx.load(str(folder / "model.onnx"), load_external_data=False).graph


def _stored_bytes(init) -> int:
    import onnx

    external = {e.key: e.value for e in init.external_data}
    if "length" in external:
        return int(external["length"])
    if init.raw_data:
        return len(init.raw_data)
    n = 1
    for d in init.dims:
        n *= d
    return n * _TYPE_BYTES.get(onnx.TensorProto.DataType.Name(init.data_type), 4)


def initializer_bytes(graph) -> dict[str, tuple[str, int]]:
    """name -> (element type, stored bytes) of every initializer of a graph."""
    import onnx

    return {i.name: (onnx.TensorProto.DataType.Name(i.data_type), _stored_bytes(i)) for i in graph.initializer}


def lookup_only_bytes(folder: Path) -> int:
    """Bytes of initializers that only Gather-type nodes read (an input embedding not shared with the output
    projection): decode reads one row of them per token."""
    graph = _graph(folder)
    inits = initializer_bytes(graph)
    readers: dict[str, set[str]] = {}
    for node in graph.node:
        for name in node.input:
            if name in inits:
                readers.setdefault(name, set()).add(node.op_type)
    return sum(inits[n][1] for n, ops in readers.items() if ops == {"Gather"})


def onnx_proof(folder: Path, scheme, model_params: int) -> Proof:
    graph = _graph(folder)
    inits = initializer_bytes(graph)
    types: Counter[str] = Counter()
    lin_params = lin_bytes = quantised = 0
    float_linear = []
    for node in graph.node:
        weights = [n for n in node.input if n in inits]
        if node.op_type not in ("MatMul", "MatMulNBits") or not weights:
            continue
        attrs = {a.name: a.i for a in node.attribute}
        if node.op_type == "MatMulNBits":
            params = attrs["K"] * attrs["N"]
            desc = f"MatMulNBits int{attrs['bits']} block {attrs['block_size']}"
            quantised += params
        else:
            init = next(i for i in graph.initializer if i.name == weights[0])
            params = int(init.dims[0]) * int(init.dims[1])
            desc = f"MatMul {inits[weights[0]][0]}"
        where = "lm_head" if node.name.startswith("/lm_head") else "decoder"
        types[f"{where} {desc}"] += 1
        if where == "decoder":
            lin_params += params
            lin_bytes += sum(inits[w][1] for w in weights)
            if node.op_type == "MatMul":
                float_linear.append(node.name)
    for node in graph.node:  # a quantised embedding table (GatherBlockQuantized) counts as quantised storage
        if node.op_type == "GatherBlockQuantized":
            types[f"embedding GatherBlockQuantized int{next(a.i for a in node.attribute if a.name == 'bits')}"] += 1
    if not lin_params:
        raise ProofError(f"{scheme.name}: no decoder linear layer found in {folder / 'model.onnx'}")
    if scheme.quantizes and float_linear:
        raise ProofError(f"{scheme.name}: {len(float_linear)} decoder linear layers multiply float weights, "
                         f"e.g. {float_linear[:3]}")
    if not scheme.quantizes:
        want = {"float32": "FLOAT", "float16": "FLOAT16"}[scheme.dtype]
        wrong = [n for n, (t, _) in inits.items() if t != want]
        if wrong:
            raise ProofError(f"{scheme.name}: {len(wrong)} initializers are not {want}, e.g. {wrong[:3]}")
    kinds = Counter(t for t, _ in inits.values())
    summary = "; ".join([f"ONNX {k} x{v}" for k, v in types.most_common()]
                        + [f"initializers {', '.join(f'{t} x{n}' for t, n in kinds.most_common())}"])
    return Proof(weight_bytes=sum(b for _, b in inits.values()), model_params=model_params, linear_params=lin_params,
                 linear_bytes=lin_bytes, quantized_params=quantised, types=summary)
