"""Output stage: cloud-init user-data, rootfs view, manifest, Packer snippet."""
