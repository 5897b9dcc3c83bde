"""mmioscan: find every MMIO access in a Linux kernel tree and say what it does in a TDX guest."""

__version__ = "0.1.0"
