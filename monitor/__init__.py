"""Brand-mention monitoring daemon: sources → mention → match → dedup → classify → store → alerts."""

__version__ = "0.1.0"
PRODUCT = "brand-monitor"
