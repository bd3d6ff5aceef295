"""Background work on RQ: catalogue syncs, webhook updates, purges and sweeps."""
