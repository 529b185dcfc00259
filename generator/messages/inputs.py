"""Bad input: what validate, render and verify say about profiles, secrets and options.

Templates are ``str.format`` strings (literal braces doubled); their fields are
filled with names, hosts, paths and kinds of value, never with a secret.  A field
called ``detail``/``text``/``fix`` carries prose composed by a value rule (hosts,
service-account keys) that has several wordings of one mistake.
"""

from __future__ import annotations

from generator.messages import entry

REG_EXAMPLE = "registries:\n  - host: europe-docker.pkg.dev\n    auth: {{type: gcp-service-account, secret: gar-key}}"

# ---------------------------------------------------------------- YAML and files
YAML_SYNTAX = entry("yaml-syntax", "input", "the profile is not valid YAML",
                    "this is not valid YAML: {what}",
                    "check indentation and quoting around this line; values containing ': ' or starting with '*', '&', '{{', '[' must be quoted")
YAML_CHARACTER = entry("yaml-character", "input", "a character YAML does not allow (a control character)",
                       "YAML does not allow the character U+{char:04X} here: {reason}",
                       "remove it, or write it as an escape inside a double-quoted string (e.g. \"\\x07\")")
YAML_UNREADABLE = entry("yaml-unreadable", "input", "the file cannot be read as YAML text",
                        "cannot read YAML: {error}", "save the file as UTF-8 text")
YAML_TOO_DEEP = entry("yaml-too-deep", "input", "the document is nested too deeply",
                      "the document is nested too deeply", "flatten the structure")
YAML_TOO_LARGE = entry("yaml-too-many-values", "input", "anchors/aliases expand the document beyond the limit (billion laughs)",
                       "the document expands to more than {limit} values (YAML aliases?)", "write the profile without anchors/aliases that multiply content")
YAML_TAG = entry("yaml-tag", "input", "a YAML tag or value type regauth does not accept (!tags, dates, ...)",
                 "unsupported YAML value: {what}", "use plain strings, numbers, booleans, lists and mappings (no !tags)")
YAML_KEY_NOT_NAME = entry("yaml-key-not-name", "input", "a mapping key that is not a plain name",
                          "mapping keys must be plain names", "write a name (quote it if it looks like a number, a list or a mapping)")
YAML_DUPLICATE_KEY = entry("yaml-duplicate-key", "input", "a key given twice in one mapping (YAML keeps only the last)",
                           "duplicate key '{key}' (first defined on line {first}); YAML would silently keep only the last one",
                           "remove one of them or merge their contents")
PROFILE_TOO_LARGE = entry("profile-too-large", "input", "the profile file is larger than the limit",
                          "the profile is larger than {kib} KiB", "split it into several profiles")
PROFILE_MISSING = entry("profile-missing", "input", "no such profile file",
                        "no such profile file", "check the path (profiles live in profiles/NAME.yaml)")
PROFILE_IS_DIRECTORY = entry("profile-is-directory", "input", "a directory given where a profile file belongs",
                             "this is a directory, not a profile file", "name a .yaml file, or the files in it: DIR/*.yaml")
PROFILE_UNREADABLE = entry("profile-permission", "input", "the profile cannot be read (permission denied)",
                           "permission denied reading the profile", "make it readable by the user running regauth")
PROFILE_NOT_UTF8 = entry("profile-not-utf8", "input", "the profile is not UTF-8 text",
                         "the profile is not UTF-8 text", "save it as UTF-8")
PROFILE_EMPTY = entry("profile-empty", "input", "the profile is empty",
                      "the profile is empty", "start from profiles/demo.yaml")
PROFILE_VERSION = entry("profile-version", "input", "a profile format version this regauth does not read",
                        "unsupported profile version {version!r}", "write version: {want}")
PROFILE_NAME_CLASH = entry("profile-name-clash", "input", "two profiles with the same name would write the same output",
                           "another profile is also named '{name}' ({other}); both would write {target}", "rename one of the files")
FOLDER_NO_PROFILES = entry("folder-no-profiles", "input", "a folder given as profiles holds no .yaml file",
                           "this folder has no .yaml profiles", "name profile files, or a folder holding NAME.yaml files")

# ---------------------------------------------------------------- shapes (the checker)
NOT_MAPPING = entry("not-a-mapping", "input", "a value that must be a mapping is something else",
                    "{what} must be a mapping, not {kind}", "write it as\n{example}")
UNKNOWN_KEY = entry("unknown-key", "input", "a key regauth does not know here (with did-you-mean)",
                    "unknown key '{key}'", "{hint}")
MISSING_KEY = entry("missing-key", "input", "a required key is missing",
                    "missing required key '{key}'", "add '{key}:' here")
NOT_STRING = entry("not-a-string", "input", "a value that must be a non-empty string is something else",
                   "'{key}' must be a non-empty string, not {kind}", "write {key}: \"...\" (quote it if it looks like a number)")
BAD_CHOICE = entry("bad-choice", "input", "a value that is not one of the allowed choices (with did-you-mean)",
                   "'{value}' is not a valid {key}", "{hint}")
KEY_AS_VALUE = entry("key-pasted", "input", "key material pasted where a name belongs (the message never quotes it)",
                     "'{value}' is not a valid {key}")

# ---------------------------------------------------------------- registries and auth
NO_REGISTRIES = entry("no-registries", "input", "no registries (and a target that needs some)",
                      "{what}", "add at least one registry, e.g.\n" + REG_EXAMPLE)
REGISTRIES_NOT_LIST = entry("registries-not-list", "input", "registries: is not a list",
                            "registries must be a list, not {kind}", "write\n" + REG_EXAMPLE)
# A host containerd never matches: one code per mistake (generator.core.hosts.host_problem,
# the rule doctor shares), keyed by HostProblem.kind; the message and fix come from the rule.
_HOST_TITLES = {
    "empty": "the registry host is missing or not a string",
    "key": "key material where the registry host belongs (never quoted back)",
    "spaces": "the registry host has leading or trailing spaces",
    "scheme": "the registry host has a scheme (`https://`): credentials are keyed by the bare host",
    "wildcard": "the registry host is a wildcard (`*.pkg.dev`): containerd matches the exact host it contacts",
    "path": "the registry host has a path: credentials are keyed by host only, the path belongs to the image",
    "upper-case": "the registry host has upper-case letters: hosts match as written, image references are lower case",
    "docker-io": "`docker.io` / `index.docker.io`: containerd contacts Docker Hub as `registry-1.docker.io`",
    "invalid": "the registry host is not a valid DNS name or IP, with an optional :port",
    "port-range": "the registry host's port is out of range (1-65535)",
    "default-port": "the registry host names the default port (`:443`, `:80`), which no image reference carries",
}
REGISTRY_HOST = {kind: entry(f"registry-host-{kind}", "input", title, "{text}", "{fix}") for kind, title in _HOST_TITLES.items()}
REGISTRY_TWICE = entry("registry-twice", "input", "the same registry host listed twice",
                       "registry '{host}' is listed twice (first at registries[{first}])", "keep one entry per host")
NO_SUCH_SECRET = entry("no-such-secret", "input", "auth names a secret that is not defined (with did-you-mean)",
                       "no secret named '{secret}'", "{hint}")
KEY_AS_USERNAME = entry("username-is-key", "input", "key material pasted as the username (never quoted back)",
                        "'{username}' is not a username")
USERNAME_OAUTH2 = entry("username-oauth2accesstoken", "input", "oauth2accesstoken in a static config (the token expires in an hour)",
                        "oauth2accesstoken needs a short-lived access token (about 1 hour); a static config stops working after that",
                        "use username: _json_key_base64 (default) or _json_key with a service-account key")
USERNAME_GCP = entry("username-gcp", "input", "a username Artifact Registry does not accept for a key",
                     "'{username}' is not a username Artifact Registry accepts for a service-account key",
                     "write username: _json_key_base64 (default: password is the base64 of the key file) or _json_key (password is the key JSON)")
USERNAME_MISSING = entry("username-missing", "input", "basic auth without a username",
                         "basic auth needs a username", "add username: YOUR_USER (the password comes from the secret)")
USERNAME_EMPTY = entry("username-empty", "input", "a username that is not a non-empty string",
                       "username must be a non-empty string", "write username: \"robot\"")
USERNAME_COLON = entry("username-colon", "input", "a username containing ':' (Basic auth separator)",
                       "a username may not contain ':' (it separates user and password in Basic auth)", "use the registry's robot account name")
USERNAME_CONTROL = entry("username-control", "input", "a username with a control character",
                         "the username contains a control character ({char}), which runtimes cannot send in Basic auth",
                         "write the registry's account name as plain text")
VM_IDENTITY_SECRET = entry("vm-identity-secret", "input", "gcp-vm-identity given a secret (it uses none)",
                           "gcp-vm-identity uses no secret: the node gets an access token for the VM's service account from the metadata server",
                           "remove secret: (or use type: gcp-service-account to send a key)")
VM_IDENTITY_USERNAME = entry("vm-identity-username", "input", "gcp-vm-identity with a username other than oauth2accesstoken",
                             "Artifact Registry takes an access token only with the username {username}",
                             "remove username: (it defaults to {username})")
VM_IDENTITY_MIRROR = entry("vm-identity-mirror", "input", "gcp-vm-identity on a mirror (kubelet never asks for the mirror's host)",
                           "a gcp-vm-identity registry cannot be a mirror: kubelet asks the credential provider for the image's own host, never the mirror's",
                           "pull from the Artifact Registry host directly (or give the mirror a basic / gcp-service-account auth)")
VM_IDENTITY_NOT_GOOGLE = entry("vm-identity-not-google", "input", "gcp-vm-identity for a host that is not a Google registry",
                               "'{host}' is not an Artifact Registry or Container Registry host; gcp-vm-identity sends a Google access token, which other registries refuse",
                               "use it for *-docker.pkg.dev / gcr.io hosts; ignore this warning only if this registry really accepts oauth2accesstoken + a Google token",
                               severity="warning")
VM_IDENTITY_STATIC = entry("vm-identity-static-target", "input", "gcp-vm-identity with a target that writes static credentials",
                           "gcp-vm-identity gets a ~1-hour access token at pull time, but {where} write{s} credentials into a config file once, "
                           "where the token would expire (and containerd's registry.configs are deprecated anyway)",
                           "serve this registry through kubelet's credential provider only: targets: {{kubelet: {{credential_provider: {{type: regauth}}}}}} "
                           "and remove {where} (or use a gcp-service-account key for them)")

# ---------------------------------------------------------------- mirrors and TLS
MIRROR_HOST = entry("mirror-for-host", "input", "mirror_for: is not an exact registry host (same rule as host:)", "{text}", "{fix}")
MIRROR_SELF = entry("mirror-self", "input", "a registry that mirrors itself",
                    "a registry cannot mirror itself ('{host}')", "name the upstream registry whose images this host serves, e.g. mirror_for: docker.io")
MIRROR_PATH_TYPE = entry("mirror-path-type", "input", "path: is not a string",
                         "path must be a string, not {kind}", "write path: /v2/PROJECT/REPO")
MIRROR_PATH_NO_MIRROR = entry("path-without-mirror", "input", "path: on a registry that is not a mirror",
                              "path only applies to a mirror: image references already name the repository",
                              "add mirror_for: docker.io (the registry this one mirrors), or remove path")
MIRROR_PATH_URL = entry("mirror-path-url", "input", "path: holds a URL (scheme or host)",
                        "'{given}' is not a path (host and scheme belong in host:)", "write path: /v2/PROJECT/REPO")
MIRROR_PATH_V2 = entry("mirror-path-v2", "input", "path: without the /v2/ API prefix",
                       "'{given}' does not start with /v2/: the path is used as is (override_path), so the registry API prefix must be part of it",
                       "write path: {want}")
MIRROR_PATH_SLASH = entry("mirror-path-slash", "input", "path: ends with '/'", "path must not end with '/'", "write path: {want}")
MIRROR_PATH_INVALID = entry("mirror-path-invalid", "input", "path: is not a repository path",
                            "'{given}' is not a repository path (lower-case letters, digits, '.', '_', '-' separated by '/')",
                            "write path: /v2/PROJECT/REPO")
TLS_EMPTY = entry("tls-empty", "input", "tls: names no file",
                  "tls names no file", "add ca_file: (a private CA) and/or cert_file: + key_file: (a client certificate)")
TLS_PAIR = entry("tls-pair", "input", "cert_file without key_file (or the reverse)",
                 "{have} needs {need}: a client certificate is a pair", "add {need}:")
TLS_OUTSIDE = entry("tls-file-outside", "input", "a certificate path that leaves the profile's folder",
                    "'{given}' leaves the profile's folder",
                    "keep certificate files next to the profile (or in a subfolder), or give an absolute path on purpose")
TLS_MISSING = entry("tls-file-missing", "input", "a certificate/key file that does not exist",
                    "{key} {given} does not exist or is not a file", "point {key}: at the PEM file")
TLS_TOO_LARGE = entry("tls-file-too-large", "input", "a certificate file larger than the limit",
                      "{key} {given} is larger than {kib} KiB; is it really a certificate?", "point {key}: at the PEM file")
TLS_UNREADABLE = entry("tls-file-unreadable", "input", "a certificate file that cannot be read",
                       "cannot read {key} {given}: {reason}", "check the file's permissions")
TLS_NOT_PEM = entry("tls-not-pem", "input", "a certificate file that is not PEM",
                    "{key} is not a PEM certificate",
                    "give the file that starts with -----BEGIN CERTIFICATE----- (convert DER with: openssl x509 -inform der -in F -out F.pem)")
TLS_HAS_KEY = entry("tls-cert-has-key", "input", "a certificate file that also holds a private key",
                    "{key} also holds a private key, which would be shipped as a public file",
                    "keep only the certificate(s) in it; a client key goes in key_file:")
TLS_KEY_ENCRYPTED = entry("tls-key-encrypted", "input", "an encrypted client key",
                          "key_file is encrypted; runtimes read client keys without a passphrase",
                          "decrypt it: openssl pkey -in KEY -out KEY.plain (keep it 0600)")
TLS_KEY_NOT_PEM = entry("tls-key-not-pem", "input", "a client key that is not a PEM private key",
                        "key_file is not a PEM private key", "give the file that starts with -----BEGIN PRIVATE KEY-----")
TLS_KEY_MISMATCH = entry("tls-key-mismatch", "input", "a client key that does not belong to the certificate",
                         "key_file does not belong to cert_file (their public keys differ)", "give the key the client certificate was issued for")

# ---------------------------------------------------------------- secrets
SECRET_NAME = entry("secret-name", "input", "a secret name that is not a simple name",
                    "secret name '{name}' is not a simple name", "use letters, digits, '-', '_' or '.', e.g. gar-key")
SECRET_NO_SOURCE = entry("secret-no-source", "input", "a secret without source:",
                         "missing 'source'", "add source: one of {sources}")
FILE_SECRET_NO_PATH = entry("file-secret-no-path", "input", "a file secret without path:",
                            "a file secret needs a path", "add path: keys/gar-key.json (relative to this profile's folder)")
SECRET_OUTSIDE = entry("secret-file-outside", "input", "a secret path that leaves the profile's folder",
                       "'{given}' leaves the profile's folder",
                       "keep secret files next to the profile (or in a subfolder), or give an absolute path on purpose")
SECRET_FILE_MISSING = entry("secret-file-missing", "input", "a secret file that does not exist",
                            "secret file {given} does not exist", "create it (e.g. the downloaded key JSON) or fix path:")
SECRET_FILE_SYMLINK = entry("secret-file-symlink", "input", "a secret file that is a symlink",
                            "secret file {given} is a symlink", "point path: at the real file (regauth does not follow symlinks for secrets)")
SECRET_FILE_NOT_REGULAR = entry("secret-file-not-regular", "input", "a secret file that is not a regular file",
                                "secret file {given} is not a regular file", "point path: at the key file itself")
SECRET_FILE_MODE = entry("secret-file-mode", "input", "a secret file readable by group or others",
                         "secret file {given} is readable by group or others (mode {mode:04o})", "chmod 600 {given}")
SECRET_FILE_TOO_LARGE = entry("secret-file-too-large", "input", "a secret file larger than any key",
                              "secret file {given} is larger than {kib} KiB; is it really a key?", "point path: at the key file")
ENV_SECRET_NO_VAR = entry("env-secret-no-var", "input", "an env secret without var:", "an env secret needs var", "add var: REGAUTH_GAR_KEY")
ENV_SECRET_BAD_VAR = entry("env-secret-var-name", "input", "var: is not an environment variable name",
                           "'{var}' is not an environment variable name", "write var: NAME_IN_CAPITALS")
ENV_SECRET_UNSET = entry("env-secret-unset", "input", "the environment variable of an env secret is not set",
                         "environment variable {var} is not set (secret '{name}')",
                         "export {var}=... before running regauth (in CI, map it from your secret store)")
GSM_NAME_AND_PARTS = entry("gsm-name-and-parts", "input", "a Secret Manager secret given both name: and project/secret/version",
                           "give either name: or project/secret/version, not both", "keep name: projects/P/secrets/S/versions/V, or remove it")
GSM_BAD_NAME = entry("gsm-name", "input", "name: is not a secret version resource name",
                     "'{name}' is not a secret version resource name",
                     "write name: projects/PROJECT/secrets/SECRET/versions/3 (or .../versions/latest)")
GSM_INCOMPLETE = entry("gsm-incomplete", "input", "a Secret Manager secret without project and secret",
                       "a gcp-secret-manager secret needs project and secret (or name)",
                       "add project: my-project and secret: gar-reader-key (version defaults to latest; pin a number for golden images)")
GSM_BAD_VERSION = entry("gsm-version", "input", "a secret version that is not a number or latest",
                        "'{version}' is not a secret version", "write a version number such as 3, or latest")
GSM_BAD_SECRET_ID = entry("gsm-secret-id", "input", "a Secret Manager secret id with other characters",
                          "'{secret}' is not a Secret Manager secret id", "secret ids use letters, digits, '-' and '_'")
GSM_BAD_PROJECT = entry("gsm-project", "input", "not a Google Cloud project id or number",
                        "'{project}' is not a Google Cloud project id or number", "write the project id, e.g. my-project-123")
GSM_LATEST_AT_BUILD = entry("gsm-latest-at-build", "input", "version latest fetched at render time (images may differ)",
                            "version latest is fetched when rendering, so two renders (and the golden images built from them) may differ",
                            "pin a version number (version: 3) for reproducible images, or use fetch: boot", severity="warning")
GSM_BAD_ENDPOINT = entry("gsm-endpoint", "input", "endpoint: is not an API endpoint URL",
                         "'{endpoint}' is not an API endpoint URL", "write endpoint: https://secretmanager.googleapis.com (scheme and host only)")
GSM_OPTIONS = entry("gsm-options", "input", "a Secret Manager secret whose endpoint/credentials options are wrong",
                    "{detail}", "fix the secret's endpoint/credentials_file, or the --gsm-* options")
SECRET_EMPTY = entry("secret-empty", "input", "a secret that is empty", "{label} is empty", "put the key or password in it")
SECRET_NOT_UTF8 = entry("secret-not-utf8", "input", "a password that is not UTF-8 text",
                        "{label} is not UTF-8 text, so it cannot be a password", "store the password as UTF-8 text")
SECRET_NUL = entry("secret-nul", "input", "a password with a NUL character",
                   "{label} contains a NUL character, which no runtime config can carry", "remove it; registry passwords are text")
SECRET_ONLY_NEWLINE = entry("secret-only-newline", "input", "a password that is only a line break",
                            "{label} holds only a line break, so the password would be empty", "put the password in it")
SERVICE_ACCOUNT_KEY = entry("service-account-key", "input",
                            "the secret is not a usable service-account key (mangled newlines, not JSON, wrong type, base64 of the wrong thing; one rule, shared with doctor)",
                            "{label} is not a usable service-account key: {detail}", "{fix}")
SECRET_UNAVAILABLE = entry("secret-unavailable", "input", "a secret could not be read for an offline check", "{detail}", "{fix}")
REFRESH_FORMAT = entry("refresh-format", "input", "refresh: is not an interval",
                       "refresh must be an interval such as 30m, 1h or 1d, not {shown}", "write refresh: 1h")
REFRESH_TOO_OFTEN = entry("refresh-too-often", "input", "refresh: shorter than the minimum",
                          "refresh every {value} would ask Secret Manager more often than rotation needs",
                          "write refresh: 5m or longer (1h is plenty for key rotation)")
REFRESH_NOTHING = entry("refresh-nothing", "input", "refresh: with no fetch: boot secret to refresh",
                        "no registry uses a fetch: boot secret, so a refresh would re-apply the same render-time credentials",
                        "remove refresh:, or keep the key in Secret Manager with fetch: boot so nodes pick up rotations", severity="warning")

# ---------------------------------------------------------------- targets
NO_TARGET = entry("no-target", "input", "no runtime target", "no runtime target", "add e.g.\n{example}")
PATH_NOT_ABSOLUTE = entry("path-not-absolute", "input", "a node path that is not absolute",
                          "{key} must be an absolute path on the node", "write {key}: {default}")
PATH_CONTROL = entry("path-control-character", "input", "a node path with a control character",
                     "{key} contains a control character", "write a plain path, e.g. {key}: {default}")
CONTAINERD_VERSION_NUMBER = entry("containerd-version-number", "input", "the containerd version written unquoted (1.10 reads as 1.1)",
                                  "version {written} was read as a number{reading}", "quote it: version: \"{written}\"")
CONTAINERD_VERSION = entry("containerd-version", "input", "not a containerd release", "'{version}' is not a containerd release", "{fix}")
CONTAINERD_NO_HOSTS_TOML = entry("containerd-no-hosts-toml", "input", "mirrors/TLS for a containerd older than 1.5 (no hosts.toml)",
                                 "containerd {version} cannot read hosts.toml (config_path arrived in 1.5), so mirror_for/tls cannot work there",
                                 "upgrade containerd to 1.5 or later (and say so in version:), or remove mirror_for/tls from the registries")
MICROK8S_WAIT = entry("microk8s-wait", "input", "wait_for_template: not whole seconds in range",
                      "wait_for_template must be whole seconds from 0 to {limit}, not {shown}", "write wait_for_template: 300")
RANCHER_MIRROR_PATHS = entry("rancher-mirror-paths", "input", "two mirrors of one registry with different paths (k3s/RKE2 applies one rewrite)",
                             "{distro} applies a mirror's rewrite to every endpoint of {upstream}, so {first} (path {first_path}) "
                             "and {host} (path {given}) cannot both mirror it",
                             "keep one of them for the {distro} target (or give both the same path)")
AUTHFILE_MIRROR = entry("authfile-mirror", "input", "a mirror for Docker/Podman auth files (only the host's own credentials are written)",
                        "{runtime} cannot use {host} as a mirror of {upstream}: its registry-mirrors setting (daemon.json) "
                        "covers Docker Hub only and takes no path; only the credentials for the host itself are written",
                        "pull {host}/... images by their own name with Docker, or drop the {target} target", severity="warning")
KUBELET_MATCH_GLOB = entry("kubelet-match-glob", "input", "a kubelet config.json match glob kubelet does not read",
                           "{detail}", "write e.g. \"*-docker.pkg.dev\": europe-docker.pkg.dev")
KUBELET_MATCH_VALUE = entry("kubelet-match-value", "input", "a match: value that is not a registry host",
                            "the value must be a registry host from registries:, not {kind}", "write \"{pattern}\": europe-docker.pkg.dev")
KUBELET_MATCH_HOST = entry("kubelet-match-host", "input", "a match: value that is not a host under registries:",
                           "'{host}' is not a host under registries:", "name one of: {hosts}")
KUBELET_MATCH_NO_CONFIG = entry("kubelet-match-no-config", "input", "match: with config_json off",
                                "match needs config_json (the globs are keys of that file)", "remove config_json: false, or remove match")
KUBELET_NOTHING = entry("kubelet-nothing", "input", "a kubelet target that would do nothing",
                        "config_json is off and there is no credential_provider: this target would do nothing",
                        "remove config_json: false, or add credential_provider: {{type: gcp}}")
KUBELET_FLAGS_GCP = entry("kubelet-flags-gcp", "input", "kubelet_flags with the gcp provider",
                          "kubelet_flags is written only for type: regauth (auth-provider-gcp is installed and wired by its own tooling)",
                          "remove kubelet_flags, or use type: regauth")
KUBELET_MATCH_IMAGES = entry("kubelet-match-images", "input", "match_images: not a non-empty list",
                             "match_images must be a non-empty list, not {kind}", "write match_images: [\"*.pkg.dev\", \"gcr.io\", \"*.gcr.io\"]")
KUBELET_MATCH_IMAGE = entry("kubelet-match-image", "input", "a matchImages entry kubelet does not read", "{detail}", "write e.g. \"*.pkg.dev\"")
KUBELET_CACHE_DURATION = entry("kubelet-cache-duration", "input", "cache_duration: not a Go duration",
                               "'{duration}' is not a duration kubelet reads", "write cache_duration: 1m (Go duration: 30s, 1m, 1h)")
KUBELET_CACHE_UNIT = entry("kubelet-cache-unit", "input", "cache_duration: not one number and unit (regauth's provider reads it too)",
                           "'{duration}' is a Go duration, but regauth's provider also uses it for its own cache and reads one number and unit",
                           "write cache_duration: 5m (a whole number of s, m or h)")
PROVIDER_MIRROR = entry("provider-mirror", "input", "a mirror for regauth's kubelet provider (kubelet never asks for it)",
                        "regauth's provider does not serve the mirror {host}: kubelet asks for the image's own host ({upstream}), never the mirror's",
                        "let a runtime target (containerd, k3s, ...) carry the mirror's credentials, or pull from the mirror host directly",
                        severity="warning")

# ---------------------------------------------------------------- output
PACKER_SOURCES = entry("packer-sources", "input", "output.packer.sources: not a non-empty list",
                       "sources must be a non-empty list of Packer source references, not {kind}",
                       "write sources: [{shown}] (the sources your template defines)")
PACKER_SOURCE_TYPE = entry("packer-source-type", "input", "a Packer source reference that is not a string",
                           "a source reference must be a string, not {kind}", "write e.g. source.googlecompute.golden")
PACKER_SOURCE = entry("packer-source", "input", "not a Packer source reference", "'{source}' is not a Packer source reference", "{fix}")
PACKER_SOURCE_TWICE = entry("packer-source-twice", "input", "a Packer source listed twice",
                            "source '{source}' is listed twice", "keep one entry per source")
PACKER_BAKE = entry("packer-bake-secret", "input", "bake_secret: not true or false",
                    "bake_secret must be true or false, not {kind}",
                    "write bake_secret: true (unquoted) to bake build-time credentials into the image, or false")
PACKER_NO_PLAN = entry("packer-no-plan", "input", "a Packer image without a plan (VMs also need user-data)",
                       "the Packer image gets no plan (its credentials are resolved at render time), so VMs built from it also need this profile's user-data",
                       "bake_secret: true bakes them (a sensitive variable in {var_file}); bake_secret: false keeps this layout quietly; fetch: boot secrets need neither",
                       severity="warning")
PROGRAM_URL_MISSING = entry("program-url-missing", "input", "output.program: url without output.program_url",
                            "program: url fetches regauth-apply at first boot, but output.program_url says from where",
                            "add program_url: https://HOST/PATH/regauth-apply under output (serve out/NAME/rootfs/usr/local/sbin/regauth-apply there)")
PROGRAM_URL_UNUSED = entry("program-url-unused", "input", "output.program_url without output.program: url",
                           "program_url is read only with program: url, and this profile says program: {program}",
                           "write program: url to fetch the program at first boot, or remove program_url")
PROGRAM_URL_BAD = entry("program-url-bad", "input", "output.program_url: not an http(s) URL",
                        "'{url}' is not an http:// or https:// URL with a host",
                        "write program_url: https://HOST/PATH/regauth-apply (plain http also works: user-data checks the program's SHA-256)")
PROGRAM_URL_CREDENTIAL = entry("program-url-credential", "input", "output.program_url with a credential: user:password@ or a signed URL's signature (never quoted back)",
                               "program_url holds {what}, which would travel in user-data, the manifest, the fetcher's command line and logs{expires}",
                               "serve the program without credentials (it holds none itself: user-data checks its SHA-256), e.g. a public object or one readable from the VPC")
USERDATA_KIND = entry("merge-with-kind", "input", "--merge-with user-data of an unknown kind",
                      "cannot tell what kind of user-data this is",
                      "it must start with #cloud-config, #!, #include, #cloud-boothook or be MIME multipart")
USERDATA_TOO_LARGE = entry("userdata-too-large", "input", "the user-data is larger than the limit",
                           "user-data is {size} bytes {state}; {why} ({limit} bytes)", "{fix}")

# ---------------------------------------------------------------- command line
STDOUT_ONE_PROFILE = entry("stdout-one-profile", "input", "-o - (or --format terraform) with more than one profile",
                           "stdout holds the user-data of one profile, and {count} profiles were given",
                           "render one profile (regauth render profiles/NAME.yaml -o -), or write files with -o DIR")
TERRAFORM_OUTPUT = entry("terraform-output", "input", "--format terraform with -o DIR",
                         "--format terraform writes to stdout, not to -o {output}", "drop -o (or write -o -)")
DRY_RUN_STDOUT = entry("dry-run-stdout", "input", "--dry-run together with stdout output",
                       "--dry-run prints the plan and writes nothing; it cannot also write user-data to stdout",
                       "drop --dry-run, or drop -o - / --format terraform")
MERGE_WITH_MISSING = entry("merge-with-missing", "input", "the --merge-with file does not exist",
                           "no such user-data file (--merge-with)", "give the path of your existing user-data")
VERIFY_IMAGE = entry("verify-image", "input", "--image is not an image reference",
                     "{detail}", "e.g. --image europe-docker.pkg.dev/PROJECT/REPO/IMAGE:TAG")
VERIFY_TIMEOUT = entry("verify-timeout", "input", "--timeout not positive",
                       "the timeout must be a positive number of seconds", "e.g. --timeout 10")
VERIFY_CA_MISSING = entry("verify-ca-missing", "input", "--ca-file does not exist",
                          "no such CA file (--ca-file)", "give a PEM file with the CA certificate(s) to trust")
VERIFY_CA_INVALID = entry("verify-ca-invalid", "input", "--ca-file is not PEM", "not a PEM certificate file", "give the CA certificate(s) in PEM form")
VERIFY_PROVIDER_ARGS = entry("verify-provider-args", "input", "--provider with a profile or without --image",
                             "--provider asks the provider for one image instead of reading a profile", "give --image REF and no PROFILE")
VERIFY_NOTHING = entry("verify-nothing", "input", "verify with no profile and no --provider",
                       "no profile given", "regauth verify PROFILE [--image REF], or on a node: --provider PATH --image REF")
DOCTOR_UNREADABLE = entry("doctor-unreadable", "input", "an input doctor cannot read (missing, permission denied, no config found)",
                          "cannot read: {reason}", "{fix}")
