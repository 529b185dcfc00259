"""Image references, split the way containerd and Docker split them.

Why it matters: credentials are looked up by the host the runtime *contacts*, which
for Docker Hub (``nginx``, ``docker.io/library/nginx``) is ``registry-1.docker.io``,
not the ``docker.io`` in the name.  Shared by ``doctor --image`` and ``verify --image``.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
DOCKER_HUB_HOST = "registry-1.docker.io"  # what containerd contacts (and keys credentials by)
_NAME_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")


class BadReference(ValueError):
    """The text is not an image reference (message says why; never a secret)."""


@dataclass(frozen=True)
class ImageRef:
    registry: str  # as in the name: "docker.io", "europe-docker.pkg.dev", "registry.test:5000"
    repository: str  # "library/nginx", "project/repo/image"
    reference: str  # tag or digest ("latest" when neither was given)
    text: str  # as the user wrote it

    @property
    def host(self) -> str:
        """The host the runtime contacts (no mirror configured)."""
        return DOCKER_HUB_HOST if self.registry == DOCKER_HUB else self.registry

    @property
    def is_digest(self) -> bool:
        return ":" in self.reference and self.reference.split(":", 1)[0].startswith("sha")


def parse_image(text: str) -> ImageRef:
    """Split ``text`` into registry, repository and tag/digest (Docker's rules)."""
    ref = text.strip()
    if not ref or any(c.isspace() for c in ref):
        raise BadReference(f"'{text}' is not an image reference (it is empty or has spaces)")
    if "://" in ref:
        raise BadReference(f"'{text}' has a scheme; an image reference is HOST/PATH:TAG, e.g. europe-docker.pkg.dev/PROJECT/REPO/IMAGE:TAG")
    digest = ""
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    first, sep, rest = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, remainder = first, rest
    else:
        registry, remainder = DOCKER_HUB, ref
    tag = ""
    last = remainder.rsplit("/", 1)[-1]
    if ":" in last:
        remainder, tag = remainder.rsplit(":", 1)
    if registry in (DOCKER_HUB, "index.docker.io") and "/" not in remainder:
        remainder = "library/" + remainder
    if registry == "index.docker.io":
        registry = DOCKER_HUB
    if not _NAME_RE.match(remainder):
        raise BadReference(f"'{text}' has an invalid repository name '{remainder}' (lower case letters, digits, . _ - and /)")
    return ImageRef(registry, remainder, digest or tag or "latest", text.strip())


def kubelet_match(key: str, image: ImageRef) -> bool:
    """kubelet's URLsMatch: same number of host labels, each a glob, then a path prefix."""
    bare = key.split("://", 1)[-1]
    for prefix in ("index.docker.io/v1/", "index.docker.io/v2/"):
        if bare.startswith(prefix):
            bare = "index.docker.io"
    khost, _, kpath = bare.partition("/")
    if khost == "index.docker.io" and image.registry == DOCKER_HUB:
        return True
    ihost = image.registry
    klabels, ilabels = khost.split("."), ihost.split(".")
    if len(klabels) != len(ilabels) or not all(fnmatch.fnmatchcase(i, k) for k, i in zip(klabels, ilabels)):
        return False
    kpath = kpath.strip("/")
    return not kpath or image.repository == kpath or image.repository.startswith(kpath + "/")
