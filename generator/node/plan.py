"""The plan: what regauth writes to /etc/regauth/plan.json and this program reads.

Which module and function prepare each step kind is written here once: the program
imports only the modules of its plan's step kinds, and regauth ships only those (the
generator follows this table and the modules' imports).
"""

PLAN_FORMAT = 1

# step kind -> (module of this package, its prepare function)
STEP_KINDS = {
    "containerd": ("containerd", "prepare_containerd"),
    "microk8s": ("microk8s", "prepare_microk8s"),
    "k3s": ("rancher", "prepare_registries_yaml"),
    "rke2": ("rancher", "prepare_registries_yaml"),
    "docker": ("authfile", "prepare_auth_file"),
    "podman": ("authfile", "prepare_auth_file"),
    "crio": ("authfile", "prepare_auth_file"),
    "kubelet": ("kubelet", "prepare_kubelet"),
}
