"""``regauth doctor``: read a node's existing runtime configs and say why pulls fail.

One module per config kind (:mod:`.containerd`, :mod:`.k3s`, :mod:`.authjson`), the
credential checks they share (:mod:`.credentials`), line locators (:mod:`.locate`),
file discovery (:mod:`.discover`), which containerd release reads a config
(:mod:`.containerd_release`; containerd files are read with the node's reader, as that
release reads them), the finding catalogue (:mod:`.findings`) and the
pasted-error explainer (:mod:`.errors_explain`).  :mod:`.command` ties them to the CLI.
Only the standard library, PyYAML and (when a key is checked) ``cryptography`` are used.
"""
