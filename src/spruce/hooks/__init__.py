"""The hooks spruce runs: in-process checks and fixers, and one module per external tool family."""
