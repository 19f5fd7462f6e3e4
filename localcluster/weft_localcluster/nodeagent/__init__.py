"""The local cluster's node: runs the pods the scheduler binds to it, without containers.

Each pod gets a network namespace on the node's bridge (network.py, addressing.py), a
hosts file with the cluster's Service names (hosts.py), its volumes as folders
(volumes.py, pod_files.py) and its containers as processes (images.py, launch.py,
runtime.py), supervised as the kubelet would (supervisor.py, pod_worker.py): init
containers and native sidecars in order, probes, restarts with backoff, graceful stop.
Pure logic (plans, status, backoff, hosts rendering) is kept apart from I/O and tested
without sockets. `weft cluster up` starts it; `weft cluster down` stops it and removes
everything it made (cleanup.py).
"""
