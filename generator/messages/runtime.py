"""Runtime failures (exit 1): something outside the input failed (I/O, network, Secret Manager).

The callers compose cause and fix from what failed (paths, secret names, server
messages), so these entries carry the code and its title; the code is shown as
``error: [code] ...`` and stays the same however the words change.
"""

from __future__ import annotations

from generator.messages import entry

OUTPUT_FOLDER = entry("output-folder", "runtime", "the output folder cannot be created")
WRITE_FAILED = entry("write-failed", "runtime", "writing the output failed (disk full, permissions); the previous output is unchanged")
MERGE_WITH_UNREADABLE = entry("merge-with-unreadable", "runtime", "the --merge-with file cannot be read")
TEMPLATES_MISSING = entry("templates-missing", "runtime", "regauth's own templates are missing (a broken install)")
SECRET_FILE_PERMISSION = entry("secret-file-permission", "runtime", "permission denied reading a secret file")
SECRET_FILE_UNREADABLE = entry("secret-file-unreadable", "runtime", "a secret file cannot be read (I/O error)")
GSM_CORRUPTED = entry("gsm-corrupted", "runtime", "a Secret Manager payload failed its CRC32C check in transit")
GSM_NOT_FOUND = entry("gsm-not-found", "runtime", "Secret Manager has no such secret version")
GSM_DISABLED = entry("gsm-version-disabled", "runtime", "the secret version is disabled or destroyed")
GSM_PERMISSION = entry("gsm-permission-denied", "runtime", "permission denied reading a secret (roles/secretmanager.secretAccessor), or the API is not enabled")
GSM_UNAUTHENTICATED = entry("gsm-unauthenticated", "runtime", "Secret Manager rejected the credentials regauth used")
GSM_REFUSED = entry("gsm-refused", "runtime", "Secret Manager refused the access for another reason")
GSM_UNAVAILABLE = entry("gsm-unavailable", "runtime", "Secret Manager or the network to it kept failing (retried until the budget ran out)")
GSM_NO_CREDENTIALS = entry("gsm-no-credentials", "runtime", "no Google credentials found (Application Default Credentials, credentials_file)")
GSM_TOKEN = entry("gsm-token", "runtime", "no access token could be obtained for Secret Manager")
GSM_CREDENTIALS_FILE = entry("gsm-credentials-file", "runtime", "credentials_file is not a usable credentials file")
GSM_MANY = entry("gsm-many-failed", "runtime", "several Secret Manager secrets could not be read (each listed with its fix)")
