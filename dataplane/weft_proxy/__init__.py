"""The Weft data-plane proxy and proxy-init."""

from weft_proxy.compiled import keep_sources_true

keep_sources_true()  # before any compiled module can be imported
