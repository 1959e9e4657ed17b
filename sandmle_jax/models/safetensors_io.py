"""Minimal safetensors reader/writer on numpy memory maps, bfloat16 included.

The `safetensors` package's numpy backend has no bfloat16 and its flax backend puts whole
tensors on device 0; this reader memory-maps the file so a caller slices only the bytes it needs,
and the writer streams one tensor at a time.
"""

import json
import os
import struct
from collections.abc import Iterable

import jax.numpy as jnp
import numpy as np

_DTYPES = {
        "F64": np.dtype(np.float64), "F32": np.dtype(np.float32), "F16": np.dtype(np.float16),
        "BF16": np.dtype(jnp.bfloat16), "I64": np.dtype(np.int64),
        "I32": np.dtype(np.int32), "I16": np.dtype(np.int16), "I8": np.dtype(np.int8),
        "U8": np.dtype(np.uint8), "BOOL": np.dtype(np.bool_),
}
_NAMES = {dtype: name for name, dtype in _DTYPES.items()}


class SafetensorsFile:
    """Lazy access to the tensors of one .safetensors file."""

    def __init__(self, path: str):
        self.path = path
        with open(path, "rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(header_len))
        self.metadata = header.pop("__metadata__", {})
        self._entries = header
        self._data_start = 8 + header_len
        self._mmap = None

    def keys(self) -> list[str]:
        return list(self._entries)

    def tensor(self, key: str) -> np.ndarray:
        """A read-only memory-mapped view; slicing it reads only the sliced bytes."""
        entry = self._entries[key]
        if entry["dtype"] not in _DTYPES:
            raise ValueError(f"{self.path}: tensor {key} has unsupported dtype {entry['dtype']}")
        if self._mmap is None:
            self._mmap = np.memmap(self.path, dtype=np.uint8, mode="r")
        begin, end = entry["data_offsets"]
        raw = self._mmap[self._data_start + begin:self._data_start + end]
        return raw.view(_DTYPES[entry["dtype"]]).reshape(entry["shape"])


def write(path: str, tensors: Iterable[tuple[str, tuple[int, ...], np.dtype, "callable"]],
          metadata: dict[str, str] | None = None) -> None:
    """Writes tensors given as (key, shape, dtype, produce) where produce() returns the array.

    The header is laid out from shapes first, then each tensor is produced and written in turn,
    so at most one tensor is in host memory.
    """
    tensors = list(tensors)
    header: dict = {"__metadata__": metadata or {"format": "pt"}}
    offset = 0
    for key, shape, dtype, _ in tensors:
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        header[key] = {"dtype": _NAMES[np.dtype(dtype)], "shape": list(shape),
                       "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # data aligned to 8 bytes, as the reference writer does
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for key, shape, dtype, produce in tensors:
            array = np.ascontiguousarray(produce(), dtype=dtype)
            if array.shape != tuple(shape):
                raise ValueError(f"tensor {key}: produced shape {array.shape}, declared {shape}")
            f.write(array.tobytes())
    os.replace(tmp, path)
