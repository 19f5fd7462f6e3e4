"""The outbound stack: what the application calls, routed, split, balanced and observed."""
