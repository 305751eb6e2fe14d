"""Training arrays that TensorFlow can use in place.

`tf.convert_to_tensor` copies a NumPy array (and its peak costs twice the array), so a training
set lived three times in memory: the NumPy array, the tensor, and the copy's transient. A
float32 C-contiguous array on a 64-byte boundary (TensorFlow's CPU kernels need that alignment)
can be handed over through DLPack instead, without a copy. The data pipeline and the resample
cache therefore keep their arrays in such memory; anything else is copied once, into it.
"""

from __future__ import annotations

import numpy as np

ALIGN = 64  # bytes: Eigen's EIGEN_MAX_ALIGN_BYTES in TensorFlow's CPU build


def aligned_empty(shape, dtype="float32") -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on an ALIGN-byte boundary. Its base is
    a writeable byte buffer, so a read-only array made from it can still be shared (see as_tensor)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buffer = np.empty(nbytes + ALIGN, dtype=np.uint8)
    offset = (-buffer.ctypes.data) % ALIGN
    return buffer[offset : offset + nbytes].view(dtype).reshape(shape)


def is_aligned(a: np.ndarray, dtype="float32") -> bool:
    return a.dtype == np.dtype(dtype) and a.flags.c_contiguous and a.ctypes.data % ALIGN == 0


def aligned(a, dtype="float32") -> np.ndarray:
    """`a` itself if it is already shareable as `dtype`, else one aligned copy."""
    a = np.asarray(a)
    return a if is_aligned(a, dtype) else _aligned_copy(a, dtype)


def _aligned_copy(a: np.ndarray, dtype) -> np.ndarray:
    out = aligned_empty(a.shape, dtype)
    out[...] = a
    return out


def as_tensor(a, dtype="float32"):
    """A TensorFlow tensor over the array's own memory (a copy only if `a` is not shareable, or
    is an empty array, which DLPack does not carry). The tensor keeps the memory alive; nothing
    writes through it (training only gathers rows)."""
    import tensorflow as tf

    a = aligned(a, dtype)
    if a.size == 0:
        return tf.convert_to_tensor(a)
    view = a.view()
    if not view.flags.writeable:  # DLPack < 1.0 cannot say read-only; the data's owner is writeable
        try:
            view.flags.writeable = True
        except ValueError:  # memory we do not own as writeable: copy once
            view = _aligned_copy(a, dtype)
    return tf.experimental.dlpack.from_dlpack(view.__dlpack__())
