"""Command-line interface: transport and presentation only; the work is in the domain."""
