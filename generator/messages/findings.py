"""What doctor finds in a node's files: one code per kind of finding.

doctor composes each finding's message, why and fix from what it read (tables,
hosts, versions), so these entries carry the code and its title; the codes are a
contract (``doctor --json``, the doctor corpus, scripts).
"""

from __future__ import annotations

from generator.messages import entry

SYNTAX = entry("syntax", "finding", "the file does not parse; the runtime refuses it or ignores it")
HOST_KEY = entry("host-key", "finding", "a registry key containerd/k3s/Docker never matches: wildcard, scheme, path, upper case, unquoted host "
                 "(`configs.europe-docker.pkg.dev.auth` is nested tables), `docker.io` where containerd contacts `registry-1.docker.io` "
                 "(Docker's own file: `https://index.docker.io/v1/`; Podman: `docker.io`)")
IMAGE_HOST = entry("image-host", "finding", "with `--image REF`: no credential under the host that image is pulled from (mirrors in the file are "
                   "followed; kubelet globs and Podman namespaces matched as they do; a kubelet provider's `matchImages`)")
JSON_KEY_INVALID = entry("json-key-invalid", "finding", "a `_json_key` password that is not a valid service-account key JSON (newline mangling) or is base64")
JSON_KEY_BASE64_INVALID = entry("json-key-base64-invalid", "finding", "a `_json_key_base64` password that is raw JSON, not base64, or base64 of something else")
KEY_INVALID = entry("key-invalid", "finding", "the service-account key inside the password does not load (same check as `render`)")
OAUTH2ACCESSTOKEN = entry("oauth2accesstoken", "finding", "a one-hour access token stored in static config")
USERNAME = entry("username", "finding", "a username Artifact Registry does not accept, or none at all")
AUTH_FIELD = entry("auth-field", "finding", "an `auth` field that is not base64 of `user:password`")
HEADER_ESCAPE = entry("header-escape", "finding", "a \"quoted\" `[table]` header key with a backslash escape (`\"europe\\u002Ddocker.pkg.dev\"`): "
                      "containerd 1.x keeps it as written, 2.x unescapes it (an error for a 1.x node, a warning when the release is unknown)")
MISSING_IMPORT = entry("missing-import", "finding", "an `imports` entry naming a file that does not exist: containerd 1.x refuses to start, 2.x "
                       "skips it (a warning when the release is unknown)")
WRONG_TABLE = entry("wrong-table", "finding", "auth under the table of another config `version` (`plugins.cri` in a v2 file: 1.x refuses to start; "
                    "a v2 table in a v3 file: 2.x ignores it; ...)")
IGNORED_KEY = entry("ignored-key", "finding", "a key containerd/k3s drops silently (`registry.config`, `configs.HOST.auths`, `user`, `identity_token` "
                    "vs `identitytoken`, mirror `rewrite`, `configs.HOST.tls` in 2.x, credentials in any table containerd never reads)")
CONFIG_PATH_CONFLICT = entry("config-path-conflict", "finding", "`mirrors` or `configs.HOST.tls` together with `config_path`: the CRI plugin does not load")
DEPRECATED_AUTHS = entry("deprecated-auths", "finding", "warning: `registry.auths` (deprecated, keyed by URL)", severity="warning")
CONFIG_VERSION_RELEASE = entry("config-version-release", "finding", "a config `version` the node's containerd release cannot use (version 3: 1.7 does not start, 1.6 reads it as version 2); "
                               "only when the release is known (`--containerd-version`, the plan, the live binary)")
CONFIG_VERSION_1 = entry("config-version-1", "finding", "warning: a version 1 file whose auth containerd 2.x drops", severity="warning")
SNAP_SUBSTITUTION = entry("snap-substitution", "finding", "a credential with `${...}` in the MicroK8s template (the snap rewrites it at start)")
PERMISSIONS = entry("permissions", "finding", "a file holding credentials is readable by group or others")
PROVIDER_FLAGS = entry("provider-flags", "finding", "a `CredentialProviderConfig` (`etc/kubernetes/*credential-provider*.yaml`) that no kubelet flag file names "
                       "(`/etc/default/kubelet`, `/etc/sysconfig/kubelet`, MicroK8s `args/kubelet`, k3s/RKE2 `kubelet-arg`; a warning: flags may "
                       "sit in a unit file), or `--image-credential-provider-bin-dir` missing")
PROVIDER_BINARY = entry("provider-binary", "finding", "a credential provider program missing or not executable in kubelet's bin dir")
