"""regauth: profiles in, first-boot and image-baking registry auth config out."""

__version__ = "0.1.0"
