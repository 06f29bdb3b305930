"""Packaging for seqgen: autoregressive audio and text generation on Keras 3."""
from setuptools import find_packages, setup

# What every backend needs.  A Keras backend comes from an extra: `[tf]` (TensorFlow, the default
# backend; also tf.distribute strategies) or `[jax]`.  TensorBoard is only its event-file writer and
# protos: logs need no TensorFlow.
RUNTIME = [
    "keras>=3.10",
    "tensorboard>=2.20",
    "numpy>=1.26",
    "librosa>=0.10",
    "soundfile>=0.12",
    "sentencepiece>=0.2",
    "sacrebleu>=2.4",
    "pyyaml>=6.0",
    "tqdm>=4.66",
    "matplotlib>=3.8",
    "espeakng-loader>=0.2.4",
    "grain>=0.2.12",         # the input pipelines, on every Keras backend
    "array-record>=0.7",     # the vocoder shards (random access by record)
    "ml-dtypes>=0.3",        # bfloat16 weights of the native sampling loop (Keras needs it too)
]

# Speech-quality scoring (`seqgen evaluate --quality`): PESQ (source-only: it compiles), STOI, and
# DNSMOS, whose ONNX models speechmos bundles and onnxruntime runs.
QUALITY = [
    "pesq>=0.0.4",
    "pystoi>=0.4",
    "speechmos>=0.0.1",
    "onnxruntime>=1.17",
    "requests>=2.28",  # speechmos imports it
]

TF = [
    "tensorflow>=2.21,<2.22",
]

# CPU wheels; on a GPU machine install JAX's CUDA build first (it satisfies this).
JAX = [
    "jax[cpu]>=0.4.30",
]

TEST = TF + [
    "tf-keras>=2.21,<2.22",          # tensorflow-probability needs it
    "tensorflow-probability>=0.25",  # the distributions' test oracle
    "pytest>=8",
    "pytest-timeout>=2.3",
    "hypothesis>=6.100",
] + JAX + QUALITY

setup(
    name="seqgen",
    version="0.1.0",
    description="Autoregressive audio and text generation (WaveNet, ByteNet, Transformer, Parallel WaveNet) on Keras 3",
    long_description=open("README.md", encoding="utf-8").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["seqgen", "seqgen.*", "data_prep", "data_prep.*"]),
    package_data={"seqgen.native": ["*.c", "*.h"]},   # compiled on first use (seqgen/native/build.py)
    install_requires=RUNTIME,
    extras_require={"tf": TF, "jax": JAX, "test": TEST, "quality": QUALITY},
    entry_points={"console_scripts": ["seqgen=seqgen.cli:main"]},
)
