"""Configuration: typed settings (TRADERTAPE_* variables), the generated configuration reference, and the
release version."""
