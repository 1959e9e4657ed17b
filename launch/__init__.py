"""absl-flag entry points (`python -m launch.<name>`): flags and config in, one library call out."""
