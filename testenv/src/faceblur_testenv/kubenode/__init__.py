"""A real Kubernetes node for the test cluster: containerd + runc, kubelet, kube-proxy and a bridge pod
network, all state in one work folder and everything it changes on the host undone on stop."""
