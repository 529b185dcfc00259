"""First boot with ``output.program: url``: fetch regauth-apply, check it, install it.

User-data then carries the plan and this fetcher instead of the ~20 KB program (AWS
allows 16 KB of user-data), and runs ``python3 -c SOURCE URL SHA256 DEST FIX`` before
``exec DEST``.  It is not a module of regauth-apply (the program is what is missing):
nodebuild ships it alone, so it imports only the standard library.

- The bytes must have the SHA-256 user-data names, so the transport needs no trust
  (plain http, any mirror): other bytes are never written.
- A DEST that already has those bytes (a reboot, an image that has it) is used as is.
- The network may come up late even after network-online.target: a few tries, then
  one ``FAILED [node-program-fetch]`` line and exit 1, with nothing on the node changed.
- The write is atomic (a temporary file beside DEST, fsync, rename).
"""

import hashlib
import os
import sys
import time

LIMIT = 1 << 22  # regauth-apply is ~60 KB; a body past 4 MB is not it
WAITS = (0, 1, 3, 6)  # seconds before each try: ~10 s in all


def sha256_of(path):
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None


def fetch(url, timeout=15):
    """The body at ``url`` (bytes) or the reason it could not be had (str)."""
    from urllib.request import Request, urlopen

    why = "no try was made"
    for wait in WAITS:
        time.sleep(wait)
        try:
            with urlopen(Request(url, headers={"User-Agent": "regauth-programfetch"}), timeout=timeout) as response:
                return response.read(LIMIT + 1)
        except Exception as exc:  # URLError, HTTPError, timeouts, resets: all worth another try
            why = str(getattr(exc, "reason", "") or exc)
    return why


def install(data, dest):
    folder = os.path.dirname(dest)
    os.makedirs(folder, exist_ok=True)
    temp = "%s.regauth-fetch.%d" % (dest, os.getpid())
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o755)
        os.rename(temp, dest)
    except BaseException:
        if os.path.lexists(temp):
            os.unlink(temp)
        raise


def main(argv):
    url, want, dest, fix = argv[1:5]
    if sha256_of(dest) == want:
        return 0
    got = fetch(url)
    if isinstance(got, str):
        problem = "cannot fetch %s from %s (%s after %d tries), so the plan user-data delivered was not applied" % (dest, url, got, len(WAITS))
    elif len(got) > LIMIT or hashlib.sha256(got).hexdigest() != want:
        problem = "%s does not serve the regauth-apply this user-data was rendered with (SHA-256 %s, not %s), so nothing was installed or applied" % (
            url, hashlib.sha256(got).hexdigest() if len(got) <= LIMIT else "of more than %d bytes" % LIMIT, want)
    else:
        try:
            install(got, dest)
            return 0
        except OSError as exc:
            problem = "cannot install %s (%s), so the plan user-data delivered was not applied" % (dest, exc.strerror or exc)
    sys.stderr.write("regauth-apply: FAILED [node-program-fetch] %s; %s\n" % (problem, fix))
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
