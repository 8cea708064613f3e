"""stetgate: STET v1.4.2 PSD2 authorization server, resource API and TPP client."""

__version__ = "0.1.0"
