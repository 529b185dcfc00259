"""The node program's failure codes: ``regauth-apply: FAILED [code] ...``.

One constant per kind of failure, so a log line says what failed in a word that
``regauth doctor --error`` (and the README, via generator.messages.node) explains.
The node modules write the code as a string literal (``code="node-self-check"``): an
import of these names in every module would cost the shipped program ~330 gzipped bytes.
tests/unit/test_node_codes.py holds every literal to this list.
"""

CONFIG_SYNTAX = "node-config-syntax"  # an existing config (TOML, JSON, YAML) does not parse
CONFIG_SHAPE = "node-config-shape"  # a value in the way: not a table/list/mapping where one belongs
CONFIG_VERSION = "node-config-version"  # a containerd config version regauth does not know, or not the profile's
MANAGED_BLOCK = "node-managed-block"  # regauth's marked block was edited by hand
SELF_CHECK = "node-self-check"  # the merged file would not read back exactly: nothing written
CANNOT_MERGE = "node-cannot-merge"  # a file regauth cannot rewrite faithfully (BOM, shell expansion, tags, no python3-yaml)
FILE_TYPE = "node-file-type"  # a directory, a broken symlink or non-UTF-8 text where a file was expected
WRITE_FAILED = "node-write-failed"  # writing failed (the files written before it were restored)
READ_FAILED = "node-read-failed"  # reading a file (or running a runtime's binary) failed before anything was written
RESTART_FAILED = "node-restart-failed"  # config written, restarting the runtime failed
LOCKED = "node-lock"  # the lock directory cannot be used
PLAN_INVALID = "node-plan-invalid"  # the plan is not one this regauth-apply reads
FETCH_GAVE_UP = "node-fetch-timeout"  # a boot-time fetch kept failing until --fetch-timeout
FETCH_REFUSED = "node-fetch-refused"  # Secret Manager / the metadata server refused or answered garbage
SECRET_PAYLOAD = "node-secret-payload"  # the fetched secret cannot be a password or key
PROVIDER_STORE = "node-provider-store"  # the credential provider's store is missing, unreadable or stale
RUNTIME_MISSING = "node-runtime-missing"  # the target's runtime (or its config template) is not on the node
CREDENTIAL_HELPER = "node-credential-helper"  # Docker's credsStore/credHelpers would ignore the written auths
CONFIG_PATH_CONFLICT = "node-config-path-conflict"  # mirrors/configs.tls that the CRI plugin refuses with config_path

ALL = (CONFIG_SYNTAX, CONFIG_SHAPE, CONFIG_VERSION, MANAGED_BLOCK, SELF_CHECK, CANNOT_MERGE, FILE_TYPE, WRITE_FAILED, READ_FAILED,
       RESTART_FAILED, LOCKED, PLAN_INVALID, FETCH_GAVE_UP, FETCH_REFUSED, SECRET_PAYLOAD, PROVIDER_STORE, RUNTIME_MISSING,
       CREDENTIAL_HELPER, CONFIG_PATH_CONFLICT)
