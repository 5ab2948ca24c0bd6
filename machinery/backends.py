"""Which Keras 3 backend runs the kit (TensorFlow, JAX or PyTorch), chosen once, before Keras is imported.

Keras reads KERAS_BACKEND at its first import and cannot switch afterwards, so
every script that touches Keras parses its flags first, calls use(args.backend), and only then imports
the modules that import Keras (models.py, train_step.py, checkpoints.py, judge.py, ...). The kit's own code
is the same on every backend (keras.ops, keras.random, Keras variables); where the backends really
differ (finding a GPU, what XLA and bfloat16 cost), one function here says so.
"""

import importlib.util
import logging
import os
import sys
from pathlib import Path

import numpy as np

from machinery import cli

NAMES = ("tensorflow", "jax", "torch")
DEFAULT = "tensorflow"
HOW_TO_INSTALL = {
    "tensorflow": "pip install -r requirements.txt",
    "jax": "pip install -r requirements-jax.txt",
    # PyPI's default torch wheel pulls about 3 GB of CUDA libraries: the kit leaves that choice to you.
    "torch": "pip install torch --index-url https://download.pytorch.org/whl/cpu (CPU), or use a machine "
             "that has PyTorch already",
}
# What the kit computes once per machine and keeps: the judge's features of real images it does not ship
# (judge.py) and, under JAX, the compiled XLA programs. Delete it at any time; DCGAN_KIT_CACHE names another
# folder.
CACHE_DIR = Path(os.environ.get("DCGAN_KIT_CACHE")
                 or Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "dcgan-kit").expanduser()
FLAG_HELP = ("Keras backend to run on: tensorflow, jax or torch (default: $KERAS_BACKEND, else tensorflow; "
             "installed here: {})")


def installed():
    """The backends whose library can be imported here (looked up, not imported: that takes seconds)."""
    return [name for name in NAMES if importlib.util.find_spec(name) is not None]


def add_flag(parser):
    parser.add_argument("--backend", choices=NAMES, metavar="NAME",
                        help=FLAG_HELP.format(", ".join(installed()) or "none"))


def chosen(requested=None):
    """The backend's name that use(requested) will pick (the flag, else $KERAS_BACKEND, else tensorflow),
    nothing imported: for checks that need only the name, made before the slow import. One the kit does not
    run on is a one-line error."""
    name = requested or os.environ.get("KERAS_BACKEND") or DEFAULT
    if name not in NAMES:
        cli.fail(f"KERAS_BACKEND={name} is not a backend the kit runs on; set it to one of {', '.join(NAMES)} "
                 "or pass --backend")
    return name


def use(requested=None):
    """Pick the backend (see chosen), import Keras on it, return its name. A backend that is unknown, not
    installed, or not the one Keras already runs on is a one-line error."""
    name = chosen(requested)
    if importlib.util.find_spec(name) is None:
        others = [n for n in installed() if n != name]
        cli.fail(f"backend {name} is not installed here: {HOW_TO_INSTALL[name]}"
                 + (f"; or pass --backend {' or '.join(others)}" if others else ""))
    if "keras" in sys.modules:  # in a test, a notebook or another script: Keras cannot switch any more
        loaded = sys.modules["keras"].backend.backend()
        if loaded != name:
            cli.fail(f"Keras already runs on {loaded} in this process and cannot switch to {name}; "
                     f"start a new process with --backend {name}")
        return name
    os.environ["KERAS_BACKEND"] = name
    if name == "jax":
        # JAX's own disk cache of compiled programs (read when JAX is imported): a second run skips most of
        # its compiling, e.g. 4 s of the 20 s evaluate.py takes. Every program, however quick to compile.
        os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(CACHE_DIR / "jax_compilation"))
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    with cli.quiet_tensorflow():  # TensorFlow's C++ start-up notes; harmless on the other backends
        import keras  # noqa: F401
    if name == "torch":
        # torch.compile (--xla on) logs a page of traceback as a warning when it cannot compile a backward pass
        # ahead of time, then raises the same error when the pass runs: compiler_failure makes that one line.
        logging.getLogger("torch._functorch._aot_autograd.graph_compile").setLevel(logging.ERROR)
    if name != "tensorflow":
        # Keras 3.15 imports TensorFlow wherever it is installed just to ask whether it is (set_random_seed
        # seeds it for tf.data, saving checks for tf.TensorShape): seconds and memory the kit never uses.
        from keras.src.utils import module_utils
        module_utils.tensorflow._available = False
    return name


def current():
    import keras
    return keras.backend.backend()


def predict_in_batches(model, inputs, batch, prepare=None, bar=None, finish=None):
    """model's outputs (an array, or a list of arrays for several outputs) for `inputs` (an array, or a list
    for several inputs), `batch` rows at a time through the compiled predict step, each batch passed through
    `prepare` first (e.g. uint8 -> float32: only one batch is ever held as floats) and each output batch
    through `finish` (e.g. float32 -> uint8 images, for the same reason). Not predict(): under TensorFlow it
    wraps the array in a tf.data pipeline first, which made the judge 1.5x slower on a CPU.
    `bar`: a tqdm bar advanced by each row."""
    several = isinstance(inputs, (list, tuple))  # a model of several inputs: the same rows of each
    outputs = []
    for start in range(0, len(inputs[0] if several else inputs), batch):
        rows = [x[start:start + batch] for x in inputs] if several else inputs[start:start + batch]
        result = model.predict_on_batch(prepare(rows) if prepare else rows)
        result = finish(result) if finish else result
        outputs.append([result] if not isinstance(result, (list, tuple)) else result)
        if bar is not None:
            bar.update(len(rows[0] if several else rows))
    if not outputs:
        raise ValueError("predict_in_batches needs at least one row")
    joined = [np.concatenate(parts) for parts in zip(*outputs)]
    return joined if len(joined) > 1 else joined[0]


def compile_update(update, reads, writes, xla=True):
    """update(*inputs) assigns new values, computed with keras.ops, to the Keras variables `writes`, from
    those, from `reads` and from its inputs, and may return tensors. Returns a function run(*inputs) that
    runs it as one compiled call and returns update's outputs where they were computed, on the device.

    Why each library's own compiler: Keras compiles a model's train and predict steps, but has no call that
    compiles a plain update of variables, and run op by op such an update costs a launch per op: G's weight
    average (averaging.py), 4 ops on each of 10 weights after every step, took 4.4 ms a step under JAX and
    13.8 ms under TensorFlow on a 2-core Xeon, against 0.76 and 1.2 ms compiled (docs/speed.md); on a GPU
    every launch counts. And predict_on_batch, which does compile, hands its results back as numpy: a wait
    for the device and two copies, where the next call wants them on the device anyway (train_step.py).
    JAX: jax.jit over the values (Keras's StatelessScope lends them to the variables while it traces); the
    old buffers of `writes` are donated, so the update happens in place. TensorFlow: tf.function,
    XLA-compiled when `xla` (a CPU computes convolutions faster without: see XLA_HELP). PyTorch: op by op
    (its launches are queued, not waited for) without autograd. `xla` False under JAX: op by op too, as
    Keras runs JAX with jit_compile=False.
    """
    backend = current()
    if backend == "tensorflow":
        import tensorflow as tf
        return tf.function(update, jit_compile=bool(xla))
    if backend == "torch":
        import torch

        def run_without_autograd(*inputs):
            with torch.no_grad():
                return update(*inputs)
        return run_without_autograd
    if not xla:
        return update
    import jax
    import keras

    def pure(write_values, read_values, inputs):
        lent = list(zip(writes, write_values)) + list(zip(reads, read_values))
        with keras.StatelessScope(state_mapping=lent) as scope:
            outputs = update(*inputs)
        return [scope.get_current_value(v) for v in writes], outputs
    compiled = jax.jit(pure, donate_argnums=0)

    def run(*inputs):
        written, outputs = compiled([v.value for v in writes], [v.value for v in reads], inputs)
        for variable, value in zip(writes, written):
            variable.assign(value)
        return outputs
    return run


def input_gradient(function, inputs):
    """The gradient of sum(function(inputs)) with respect to `inputs`, itself differentiable: WGAN-GP's
    penalty (models.WassersteinCritic) is a loss on it, so the train step differentiates through it again.

    Why each library's own call: keras.ops has no gradient. Each works inside Keras's train step: TensorFlow's
    tape nests in the step's tape, jax.grad in the step's jax.grad (the model's variables then read the
    traced values Keras lends them), and PyTorch keeps the graph (create_graph) for the step's backward().
    """
    backend = current()
    if backend == "tensorflow":
        import tensorflow as tf
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            total = tf.reduce_sum(function(inputs))
        return tape.gradient(total, inputs)
    if backend == "torch":
        import torch
        with torch.enable_grad():  # Keras works out a step's output shapes with autograd off
            inputs = inputs.detach().requires_grad_(True)
            return torch.autograd.grad(function(inputs).sum(), inputs, create_graph=True)[0]
    import jax
    return jax.grad(lambda values: function(values).sum())(inputs)


def gpu_name():
    """The first GPU the backend will compute on, or None. Each library has its own way to ask."""
    backend = current()
    if backend == "tensorflow":
        import tensorflow as tf
        gpus = tf.config.list_physical_devices("GPU")
        return gpus[0].name if gpus else None
    if backend == "jax":
        import jax
        device = jax.devices()[0]
        return getattr(device, "device_kind", str(device)) if device.platform == "gpu" else None
    import torch
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def describe_device():
    gpu = gpu_name()
    return f"{current()} on GPU ({gpu})" if gpu else f"{current()} on CPU ({os.cpu_count()} cores)"


BFLOAT16_FLAGS = {" avx512_bf16": "AVX512-BF16", " amx_bf16": "AMX"}  # /proc/cpuinfo flag: its name


def native_bfloat16_cpu(cpuinfo="/proc/cpuinfo"):
    """True on CPUs that compute bfloat16 in hardware (AVX512-BF16 or AMX-BF16)."""
    try:
        text = open(cpuinfo).read()
    except OSError:
        return False
    return any(flag in text for flag in BFLOAT16_FLAGS)


# What --precision auto picks, per backend, on a CPU with bfloat16 in hardware. Measured with bench.py
# (docs/speed.md); a CPU without it gets float32 everywhere: under TensorFlow, mixed_bfloat16 ran 8x slower
# than float32 on an AVX2-only EPYC. GPUs get float32: on one H200 mixed_bfloat16 was no faster at batch 32
# (JAX 1.01-1.02x float32's fast loop, PyTorch 0.85-0.93x), whose steps leave the GPU waiting on the host.
BFLOAT16_PAYS_ON_CPU = {"tensorflow": True, "jax": False, "torch": False}
PRECISION_HELP = ("compute precision (default: auto = mixed_bfloat16 under TensorFlow on a CPU with AVX512-BF16 "
                  "or AMX, where it measured faster with the same FD; float32 on every other backend and "
                  "device, GPUs included, where bfloat16 was no faster). Weights and output layers stay "
                  "float32")


def resolve_precision(requested):
    """ "auto" -> what measured fastest at equal quality on this backend and device; else `requested`."""
    if requested != "auto":
        return requested
    if gpu_name() is None and native_bfloat16_cpu() and BFLOAT16_PAYS_ON_CPU[current()]:
        return "mixed_bfloat16"
    return "float32"


# Where G's stride-2 transposed convolutions are computed as a convolution and a pixel shuffle
# (subpixel.py). XLA's gradients of the dilated convolution JAX otherwise writes are a known blind spot
# (jax-ml/jax#23783: on CPUs and GPUs alike); with the sub-pixel form the GAN's step under JAX took 5.0x
# less time for legacy and 3.1x for kit on the 2-core Xeon. TensorFlow and PyTorch call oneDNN's own
# transposed convolution, and were slower with it (TensorFlow legacy 36 -> 45 ms). On one H200 the two forms
# were within 6% under JAX (a step there waits on the host, not on G), and PyTorch's transposed convolution
# (cuDNN's) 1.16-1.23x faster than the sub-pixel form (docs/speed.md, *On one GPU*).
SUBPIXEL_PAYS = {"tensorflow": False, "jax": True, "torch": False}

XLA_HELP = ("compile the train steps with XLA (default: auto = Keras's choice per backend: TensorFlow on with a "
            "GPU and off on a CPU, where it measured 6.7x slower than even the naive loop; JAX always compiles "
            "with XLA, and 'off' runs it op by op, far slower; PyTorch off, 'on' is torch.compile)")


def jit_compile_setting(xla):
    """--xla auto|on|off -> the jit_compile argument of Keras's compile()."""
    return {"auto": "auto", "on": True, "off": False}[xla]


def compiler_failure(error):
    """One line for an error raised inside a backend's compiler, not by the kit's code; None for any other
    error. PyTorch 2.13's torch.compile (what --xla on asks for under PyTorch) fails on the kit's step on a
    CPU with "LoweringException: ValueRangeError: Invalid ranges [0:-1]" while lowering a convolution, a
    regression of 2.13 (pytorch/pytorch#188422); it would otherwise end the run with a page of traceback."""
    module = type(error).__module__
    if not module.startswith(("torch._inductor", "torch._dynamo")):
        return None
    first = (str(error).strip().splitlines() or [""])[0][:160]
    return f"{current()}'s compiler failed on a train step ({type(error).__name__}: {first}); run without --xla on"
