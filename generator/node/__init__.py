"""regauth-apply, the program that runs on every node: merge registry credentials into
the node's runtime configs at first boot.

Standard library only, Python 3.6 syntax: every machine that runs cloud-init has
python3, and nothing else may be assumed on a stock cloud image (RHEL 8's
platform-python is 3.6).  regauth ships one file per plan built from exactly the
modules that plan needs (generator/nodebuild.py); the generator imports
these same modules for previews, doctor and verify.
"""
