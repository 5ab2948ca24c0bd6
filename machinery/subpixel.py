"""A strided transposed convolution computed as one ordinary convolution and a pixel shuffle, for JAX.

models.py builds G with it where backends.SUBPIXEL_PAYS says so.
Why: XLA computes the weight gradients of a strided Conv2DTranspose very slowly (JAX writes the layer as
a convolution over an input dilated with zeros, and XLA's gradient of that is a known blind spot on CPUs
and GPUs alike: jax-ml/jax#23783, #31662). The same layer can be written without dilation. With stride
s, the output pixels fall into s x s phases (row mod s, column mod s), and each phase is an ordinary
convolution of the input with a few of the kernel's taps: for a 5x5 kernel and stride 2, taps 1 and 3 of
each axis for one phase, taps 0, 2 and 4 for the other. Stacking the s x s phase kernels along the output
channels gives one ordinary convolution, at the input's size, whose s*s*filters channels a reshape then
interleaves into the s-times-larger image (the "pixel shuffle" of sub-pixel convolution, Shi et al. 2016).

Same weights, same shapes, same numbers up to float rounding as Keras's layer (tests/test_models.py), so
checkpoints move between backends unchanged, and models.portable_copy saves G with Keras's own layer:
generator.keras loads anywhere, with or without the kit.
"""

import keras
import numpy as np
from keras import layers, ops


def phase_taps(kernel_size, stride):
    """Which kernel tap feeds which window position, per output phase, along one axis.

    Keras's "same" transposed convolution puts input pixel i's kernel tap k at output o = stride*i + k -
    pad, pad = (kernel_size - stride) // 2. So output o = stride*q + r (phase r) sums x[q + low + t] *
    w[taps[t, r]] over window positions t. Returns (taps, low, high): taps[t, r] == kernel_size where phase
    r uses no tap at t (a zero), and the window reaches from input q + low to q + high."""
    pad = (kernel_size - stride) // 2
    phases = []
    for r in range(stride):
        a, first = divmod(r + pad, stride)  # phase r uses taps first, first + stride, ... at x[q + a - j]
        phases.append({a - j: k for j, k in enumerate(range(first, kernel_size, stride))})
    low = min(min(p) for p in phases)
    high = max(max(p) for p in phases)
    taps = np.full((high - low + 1, stride), kernel_size)
    for r, phase in enumerate(phases):
        for offset, k in phase.items():
            taps[offset - low, r] = k
    return taps, low, high


@keras.saving.register_keras_serializable(package="dcgan_kit")
class SubpixelConv2DTranspose(layers.Conv2DTranspose):
    """keras.layers.Conv2DTranspose, computed as above when strided with "same" padding (G's upsampling
    layers); any other setting (stride 1, a kernel smaller than the stride, "valid", dilation,
    channels_first) is Keras's own call."""

    def call(self, inputs):
        stride = self.strides[0]
        if (stride == 1 or self.strides[1] != stride or self.kernel_size[0] != self.kernel_size[1]
                or self.kernel_size[0] < stride or self.padding != "same" or self.data_format != "channels_last"
                or self.output_padding or tuple(self.dilation_rate) != (1, 1)):
            return super().call(inputs)
        taps, low, high = phase_taps(self.kernel_size[0], stride)
        window, filters = len(taps), self.filters
        kernel = ops.pad(self.kernel, [[0, 1], [0, 1], [0, 0], [0, 0]])  # tap kernel_size: zeros
        kernel = ops.take(ops.take(kernel, taps.reshape(-1), axis=0), taps.reshape(-1), axis=1)
        # (window, row phase, window, column phase, filters, in) -> (window, window, in, phases x filters)
        kernel = ops.reshape(kernel, (window, stride, window, stride, filters, kernel.shape[-1]))
        kernel = ops.reshape(ops.transpose(kernel, (0, 2, 5, 1, 3, 4)), (window, window, -1, stride * stride * filters))
        padded = ops.pad(inputs, [[0, 0], [-low, high], [-low, high], [0, 0]])
        phases = ops.conv(padded, kernel, strides=1, padding="valid")  # (batch, H, W, phases x filters)
        height, width = phases.shape[1], phases.shape[2]
        shuffled = ops.reshape(phases, (-1, height, width, stride, stride, filters))
        shuffled = ops.transpose(shuffled, (0, 1, 3, 2, 4, 5))  # rows of each phase next to each other
        outputs = ops.reshape(shuffled, (-1, height * stride, width * stride, filters))
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return self.activation(outputs) if self.activation is not None else outputs
