"""proxy-init: the pod's iptables rules that send its TCP traffic through the proxy.

`python -m weft_proxy.init apply|remove|show` runs in the pod's network namespace
(the injected `weft-init` container). `rules` builds the rule set as pure text;
`iptables` runs iptables-save and iptables-restore.
"""
