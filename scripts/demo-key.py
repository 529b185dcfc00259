#!/usr/bin/env python3
"""Write a throwaway service-account key file (fresh RSA key, fake identity) for the demo.

It has the exact shape of a key from `gcloud iam service-accounts keys create`, so
regauth's key checks run on it, but it belongs to no real account.
"""

from __future__ import annotations

import json
import os
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def service_account_key(email: str = "regauth-demo@regauth-demo.iam.gserviceaccount.com") -> dict[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    project = email.split("@")[1].split(".")[0]
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": os.urandom(20).hex(),
        "private_key": pem,
        "client_email": email,
        "client_id": str(int.from_bytes(os.urandom(8), "big")),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/" + email.replace("@", "%40"),
        "universe_domain": "googleapis.com",
    }


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "profiles/keys/demo-gar-key.json"
    if os.path.exists(path):
        return 0
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(service_account_key(), handle, indent=2)
        handle.write("\n")
    print(f"wrote throwaway key {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
