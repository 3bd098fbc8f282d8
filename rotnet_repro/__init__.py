"""rotnet_repro: a reproduction of RotNet (Gidaris, Singh & Komodakis, ICLR 2018) on CIFAR-10."""

__version__ = "0.1.0"
