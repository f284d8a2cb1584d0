"""Settings: the TOML file and environment, their validation and reference page."""
