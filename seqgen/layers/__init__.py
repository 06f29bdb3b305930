"""Backend-agnostic Keras layers (``keras.ops`` only)."""
from seqgen.layers.attention import CausalSelfAttention
from seqgen.layers.bytenet_block import ByteNetBlock
from seqgen.layers.causal_conv import CausalConv1D
from seqgen.layers.residual_block import ResidualBlock
from seqgen.layers.upsampler import Upsampler, default_upsample_scales

__all__ = ["ByteNetBlock", "CausalSelfAttention", "CausalConv1D", "ResidualBlock", "Upsampler", "default_upsample_scales"]
