"""hookrelay: webhook subscriptions and signed, retried delivery of e-signature events."""

__version__ = "0.1.0"
