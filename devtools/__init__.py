"""Development and test tooling: private servers on free ports (services) and `make dev` (dev)."""
