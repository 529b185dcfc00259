"""Why the node program failed: the codes of ``regauth-apply: FAILED [code] ...``.

The codes are defined once, in :mod:`generator.node.codes` (which ships to nodes);
here each gets its title and what to do, for ``regauth doctor --error`` and the README.
"""

from __future__ import annotations

from generator.messages import entry
from generator.node import codes as C

CONFIG_SYNTAX = entry(C.CONFIG_SYNTAX, "node", "an existing runtime config does not parse (TOML, JSON or YAML); nothing was changed",
                      "the node's config file is not valid as it stands, so regauth-apply refused to merge into it",
                      "fix the file at the line named in the log (`regauth doctor /etc` points at it), then rerun regauth-apply")
CONFIG_SHAPE = entry(C.CONFIG_SHAPE, "node", "a value in the node's config is in the way (not a table, list or mapping where one belongs)",
                     "a key regauth writes under already holds a value of another kind",
                     "fix or remove the key named in the log, then rerun regauth-apply")
CONFIG_VERSION = entry(C.CONFIG_VERSION, "node", "a containerd config version regauth does not know, or one the profile's containerd release cannot read",
                       "the config's `version` and the node's containerd release disagree",
                       "say the node's real containerd release in the profile (targets.containerd.version) and re-render, or fix the config's version line")
MANAGED_BLOCK = entry(C.MANAGED_BLOCK, "node", "regauth's marked block in a config was edited by hand",
                      "lines inside regauth's managed block are rewritten at every run, so hand edits there are refused",
                      "move the hand-written lines above the block (or restore the block's marker lines), then rerun")
SELF_CHECK = entry(C.SELF_CHECK, "node", "the merged config would not read back exactly; nothing was written",
                   "regauth-apply re-reads what it would write and found a difference (auth, other settings, BOM or line endings)",
                   "report it with the config (credentials removed); the node's config was left unchanged")
CANNOT_MERGE = entry(C.CANNOT_MERGE, "node", "a file regauth cannot rewrite faithfully (BOM, shell expansion, YAML tags, no python3-yaml)",
                     "merging would lose or change something the file says",
                     "do what the log line says (install python3-yaml, remove the BOM, add the flag by hand)")
FILE_TYPE = entry(C.FILE_TYPE, "node", "a directory, broken symlink, non-UTF-8 or missing file where a config file was expected",
                  "the path regauth writes is not a regular text file",
                  "fix or remove the path named in the log, then rerun")
READ_FAILED = entry(C.READ_FAILED, "node", "reading a file (or running the runtime's binary) failed before anything was written",
                    "permissions, an I/O error or a missing binary stopped regauth-apply while it prepared the merge",
                    "fix the cause named in the log (the file and its error), then rerun regauth-apply")
WRITE_FAILED = entry(C.WRITE_FAILED, "node", "writing a file failed; the files written before it were restored",
                     "the disk, permissions or a read-only mount stopped the write",
                     "free space / fix permissions; if the log says restoring FAILED, restore from FILE.regauth.orig")
RESTART_FAILED = entry(C.RESTART_FAILED, "node", "the config was written but restarting the runtime failed",
                       "the new config is in place; the runtime did not restart",
                       "systemctl status / journalctl -u the unit named in the log; `regauth doctor /etc` checks the config")
LOCKED = entry(C.LOCKED, "node", "the lock directory cannot be used (another run, or a symlink/file in its place)",
               "regauth-apply serialises runs with a lock directory",
               "wait for the other run, or remove the path named in the log if no run is active")
PLAN_INVALID = entry(C.PLAN_INVALID, "node", "the plan is not one this regauth-apply reads (an unknown format, step or field, or a registry without its password)",
                     "the plan and the node program come from different regauth versions, or the plan was edited",
                     "re-render the user-data with one regauth version and apply both together")
FETCH_GAVE_UP = entry(C.FETCH_GAVE_UP, "node", "a boot-time fetch kept failing until --fetch-timeout",
                      "the metadata server or Secret Manager was unreachable or kept failing",
                      "check egress / Private Google Access and the VM's service account, then rerun regauth-apply")
FETCH_REFUSED = entry(C.FETCH_REFUSED, "node", "Secret Manager or the metadata server refused the fetch or answered garbage (403, 404, not JSON)",
                      "retrying does not help: the secret, its version or the VM's access is wrong",
                      "check the secret's project/id/version and roles/secretmanager.secretAccessor for the VM's service account")
SECRET_PAYLOAD = entry(C.SECRET_PAYLOAD, "node", "the fetched secret cannot be a password or key (empty, not UTF-8, NUL, not key JSON)",
                       "the secret version holds something else than the key or password",
                       "add a new secret version with the key file / password (regauth validate checks one locally)")
PROVIDER_STORE = entry(C.PROVIDER_STORE, "node", "the kubelet credential provider's store is missing, unreadable or from another plan",
                       "regauth-credential-provider reads what regauth-apply wrote",
                       "rerun regauth-apply from a matching plan (it rewrites the store)")
RUNTIME_MISSING = entry(C.RUNTIME_MISSING, "node", "the target's runtime (or the MicroK8s template) is not on the node",
                        "regauth-apply runs before the runtime was installed, or the profile names a runtime the image lacks",
                        "install the runtime earlier in runcmd, raise wait_for_template (MicroK8s), or set if_missing: skip for this target")
CREDENTIAL_HELPER = entry(C.CREDENTIAL_HELPER, "node", "Docker's credsStore/credHelpers would ignore the auths regauth writes",
                          "Docker asks a credential helper instead of reading auths for those registries",
                          "remove the credsStore / credHelpers entry named in the log, or drop the docker target")
CONFIG_PATH_CONFLICT = entry(C.CONFIG_PATH_CONFLICT, "node", "mirrors or configs.tls in the node's config, which the CRI plugin refuses with the config_path the profile needs",
                             "the profile's mirrors/TLS need hosts.toml (config_path), and containerd does not load both",
                             "move those settings to hosts.toml files, or drop mirror_for/tls from the profile")
# Not a code of generator/node: the node program is what is missing, so user-data's runcmd
# prints this line itself (generator/outputs/cloudinit.py).
PROGRAM_MISSING = entry("node-program-missing", "node", "user-data carries only the plan (output.program: image), and the image has no regauth-apply",
                        "{program} is not in this image, so the plan user-data delivered was not applied",
                        "build the image with out/NAME/packer/ (it bakes {program}), or render with output.program: user-data")

PROGRAM_FETCH = entry("node-program-fetch", "node", "user-data fetches regauth-apply (output.program: url), and it could not be fetched, was not the program rendered, or could not be installed",
                      "{problem}",
                      "make output.program_url serve out/NAME/rootfs/usr/local/sbin/regauth-apply of this render (same regauth version) and let the VM reach it, then rerun cloud-init or reboot; or render with output.program: user-data or image")

# Node codes that generator/node's regauth-apply does not print: user-data's runcmd
# (PROGRAM_MISSING) or its fetcher, generator/node/programfetch.py (PROGRAM_FETCH), does.
NOT_FROM_THE_PROGRAM = (PROGRAM_MISSING.code, PROGRAM_FETCH.code)
