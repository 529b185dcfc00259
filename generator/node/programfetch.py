"""First boot with ``output.program: url``: fetch regauth-apply, check it, install it.

User-data then carries the plan and this fetcher instead of the ~20 KB program (AWS
allows 16 KB of user-data), and runs ``python3 -c SOURCE URL SHA256 DEST SECONDS FIX``,
then DEST.  It is not a module of regauth-apply (the program is what is missing):
nodebuild ships it alone, so it imports only the standard library.

- The bytes must have the SHA-256 user-data names, so the transport needs no trust
  (plain http, any mirror): other bytes are never written.
- A DEST that already has those bytes (a reboot, an image that has it) is used as is.
- The network may come up late even after network-online.target (a NAT gateway, a
  proxy): retries with backoff for SECONDS (regauth-apply's --fetch-timeout default, the
  same patience as its Secret Manager fetches), then one ``FAILED [node-program-fetch]``
  line and exit 1, with nothing on the node changed.
- The write is atomic (a temporary file beside DEST, fsync, rename).
"""

import hashlib
import os
import sys
import time

LIMIT = 1 << 22  # regauth-apply is ~60 KB; a body past 4 MB is not it
MAX_WAIT = 15  # seconds between tries at most (1, 2, 4, 8, 15, 15, ...)


def sha256_of(path):
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None


def fetch(url, seconds):
    """The body at ``url`` (bytes), or why it could not be had and in how many tries."""
    from urllib.error import HTTPError
    from urllib.request import Request, urlopen

    deadline = time.monotonic() + seconds
    tries, wait = 0, 1
    while True:
        tries += 1
        try:
            left = max(1.0, min(15.0, deadline - time.monotonic()))
            with urlopen(Request(url, headers={"User-Agent": "regauth-programfetch"}), timeout=left) as response:
                return response.read(LIMIT + 1)
        except HTTPError as exc:
            if 400 <= exc.code < 500 and exc.code not in (408, 429):  # the server answered: retrying does not help
                return "HTTP %d %s; not retried" % (exc.code, exc.reason)
            why = "HTTP %d %s" % (exc.code, exc.reason)
        except Exception as exc:  # no route, refused, timeouts, resets, TLS: all worth another try
            why = str(getattr(exc, "reason", "") or exc)
        left = deadline - time.monotonic()
        if left <= 0:
            return "%s; %d tries in %d s" % (why, tries, seconds)
        time.sleep(min(wait, left))
        wait = min(wait * 2, MAX_WAIT)


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
    url, want, dest, seconds, fix = argv[1:6]
    if sha256_of(dest) == want:
        return 0
    got = fetch(url, float(seconds))
    if isinstance(got, str):
        problem = "cannot fetch %s from %s (%s), so the plan user-data delivered was not applied" % (dest, url, got)
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
