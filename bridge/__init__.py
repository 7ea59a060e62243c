"""ganbridge: a local bridge that brings GAN generators into artists' tools."""

__version__ = "0.1.0"
