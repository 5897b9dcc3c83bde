"""Command line: argv -> a command -> output (see docs/design.md)."""
